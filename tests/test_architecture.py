"""The layer picture in docs/architecture.md is drawn from the import-linter contract and stays current."""
from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_architecture_doc_is_current():
    out = subprocess.run([sys.executable, "scripts/architecture.py", "--check"], cwd=ROOT, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
