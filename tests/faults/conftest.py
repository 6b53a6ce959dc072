"""The faults tier prints one table at the end: each fault injected, battles expected / recorded / lost /
duplicated, requests retried."""
from __future__ import annotations

import os

import pytest

ROWS: list[dict] = []
HEAD = ("fault", "expected", "recorded", "lost", "duplicated", "retried")

# A killed replica must not orphan its vLLM engine process (the embedded cluster sets this too).
os.environ.setdefault("RAY_kill_child_processes_on_worker_exit_with_raylet_subreaper", "true")


@pytest.fixture(scope="session")
def fault_table():
    return ROWS


def pytest_terminal_summary(terminalreporter):
    if not ROWS:
        return
    widths = [max(len(str(r[h])) for r in ROWS + [dict(zip(HEAD, HEAD))]) for h in HEAD]
    terminalreporter.write_line("")
    terminalreporter.write_line("faults tier:")
    for row in [dict(zip(HEAD, HEAD))] + ROWS:
        terminalreporter.write_line("  " + "  ".join(str(row[h]).ljust(w) for h, w in zip(HEAD, widths)))
