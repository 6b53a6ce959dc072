"""`arena-ray report RUN_DIR`: one self-contained HTML page (inline SVG figures, no scripts, no network)."""
from __future__ import annotations

import html
from pathlib import Path
from typing import Optional

from arena_ray.judging.card import warning
from arena_ray.rating.leaderboard import rating_text
from arena_ray.records.outputs import output_file
from arena_ray.workflows.report import plots
from arena_ray.workflows.report.collect import ArenaView, ReportData, collect

STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}.warning{color:#a00}td:first-child,th:first-child{text-align:left}figure{margin:1em 0}h2{margin-top:2em}"""


def _table(head: list[str], rows: list[list]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{cells}</tr>{body}</table>"


def _entry(row: dict) -> dict:
    return {"rating": row["rating"], "ci": [row["ci_low"], row["ci_high"]], "separated": row.get("separated")}


def _pct(v: Optional[float]) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def arena_section(view: ArenaView) -> str:
    j = view.judge
    board = _table(["rank (UB)", "model", "rating (95% CI)", "battles"],
                   [[r.get("rank_ub", ""), r["model"], rating_text(_entry(r)), r["battles"]] for r in view.leaderboard])
    judge = _table(["judge games", "parse failures", "decisive games", "first-shown answer won",
                    "position-swap disagreement", "requests retried", "coordinator restarts"],
                   [[j.games, j.parse_failures, j.decisive_games, _pct(j.first_position_rate),
                     _pct(j.position_disagreement_rate), view.retries, view.coordinator_restarts]])
    return (f"<h2>{html.escape(view.name)}</h2>{board}"
            f"<figure class='plot'>{plots.leaderboard(view.leaderboard, 'Leaderboard')}</figure>"
            f"<figure class='plot'>{plots.heatmap(view.win_models, view.win_rates, 'Observed win rates')}</figure>"
            f"{card_section(view.judge_card)}"
            f"<h3>Judge position bias and agreement</h3>{judge}{categories_section(view)}")


def card_section(card: dict) -> str:
    """The judge's card: agreement with people, position consistency, and the warning when it is weak."""
    if not card:
        return ""
    ci = card.get("accuracy_decisive_ci") or [None, None]
    rows = [["agreement with people (decisive pairs)", f"{_pct(card.get('accuracy_decisive'))} "
             f"({_pct(ci[0])} – {_pct(ci[1])})" if card.get("measured", True) else "not measured"],
            ["position consistency on human pairs", _pct(card.get("position_consistency"))],
            ["position consistency on this run's battles", _pct(card.get("run_position_consistency"))],
            ["human-labelled pairs", f"{card.get('items', '–')} ({', '.join(card.get('data') or [])})"]]
    if card.get("self_preference"):
        sp = card["self_preference"]
        rows.append(["preferred its own answers", f"{_pct(sp['rate'])} of {sp['decisive_battles']} battles"])
    weak = warning(card)
    note = f"<p class='warning'><strong>Warning: {html.escape(weak)}.</strong></p>" if weak else ""
    return f"<h3>Judge card: {html.escape(str(card.get('judge', '')))}</h3>{note}" + _table(["", ""], rows)


def categories_section(view: ArenaView) -> str:
    """The boards per category (`rate --by`, `arena.categories`): per field, each value's battles and leader."""
    parts = []
    for name, part in view.categories.items():
        parts.append(f"<h3>Boards by {html.escape(name)}</h3>" + _table(
            ["value", "battles", "models", "leader", "board"],
            [[r["value"], r["battles"], r["models"], r.get("leader", "–"), r.get("board", "too few battles")]
             for r in part["values"]]))
    return "".join(parts)


def flywheel_section(data: ReportData) -> str:
    fw = data.flywheel
    rows = [[r["iteration"], r["version"], "–" if r["rating"] is None else f"{r['rating']:.1f}",
             "–" if r["ci"] is None else f"{r['ci'][0]:.0f} – {r['ci'][1]:.0f}",
             ", ".join(f"{k}: {v:.2f}" for k, v in r["win_rate"].items())] for r in fw.rows]
    parts = ["<h2>Flywheel</h2>", _table(["iteration", "version", "rating", "95% CI", "win rate"], rows),
             f"<figure class='plot'>{plots.ratings_by_iteration(fw.rows)}</figure>"]
    if any(r["stages"] for r in fw.rows):
        parts.append(f"<figure class='plot'>{plots.data_volume(fw.rows)}</figure>")
    if fw.curves:
        parts.append(f"<figure class='plot'>{plots.training_curves(fw.curves)}</figure>")
    return "".join(parts)


def render(data: ReportData) -> str:
    body = (flywheel_section(data) if data.flywheel else "") + "".join(arena_section(a) for a in data.arenas)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(data.title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(data.title)}</h1>{body}</body></html>\n")


def write_report(run_dir: str | Path, out: Optional[str | Path] = None) -> Path:
    path = output_file(Path(out) if out else Path(run_dir) / "report.html", [run_dir], own=("report.html",))
    path.write_text(render(collect(run_dir)), encoding="utf-8")
    return path
