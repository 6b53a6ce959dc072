"""`arena-ray report RUN_DIR`: one self-contained HTML page (inline SVG figures, no scripts, no network). The
battle browser filters by model pair and by instruction with radio buttons and generated CSS rules alone."""
from __future__ import annotations

import html
from pathlib import Path
from typing import Optional

from arena_ray.judging.card import warning
from arena_ray.rating.leaderboard import rating_text
from arena_ray.rating.winrates import head_to_head_text
from arena_ray.records.outputs import output_file
from arena_ray.workflows.report import plots
from arena_ray.workflows.report.collect import ArenaView, ReportData, collect

STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}.warning{color:#a00}td:first-child,th:first-child{text-align:left}figure{margin:1em 0}h2{margin-top:2em}
.browser input{display:none}.chips label{display:inline-block;border:1px solid #bbb;border-radius:3px;padding:1px 6px;
margin:2px;cursor:pointer;font-size:90%}.battle{border-top:1px solid #ddd;padding:4px 0}.battle summary{cursor:pointer}
.answers{display:grid;grid-template-columns:1fr 1fr;gap:1em}.answers pre,.said{white-space:pre-wrap;background:#f8f8f8;
padding:6px;margin:0}.said{font-size:90%}"""


def _table(head: list[str], rows: list[list]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{cells}</tr>{body}</table>"


def _entry(row: dict) -> dict:
    return {"rating": row["rating"], "ci": [row["ci_low"], row["ci_high"]], "separated": row.get("separated")}


def _pct(v: Optional[float]) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def arena_section(view: ArenaView, prefix: str = "a0") -> str:
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
            f"<h3>Judge position bias and agreement</h3>{judge}{categories_section(view)}"
            f"{browser_section(view, prefix)}")


def _chips(prefix: str, group: str, values: list[str]) -> tuple[str, str, str]:
    """Radio inputs (first: all), their labels, and the CSS that hides the battles a checked one excludes and
    marks the checked label."""
    e = html.escape
    ids = [f"{prefix}-{group}{k}" for k in range(len(values) + 1)]
    inputs = "".join(f"<input type='radio' name='{prefix}-{group}' id='{i}'{' checked' if not k else ''}>"
                     for k, i in enumerate(ids))
    labels = "".join(f"<label for='{i}'>{e(v)}</label>" for i, v in zip(ids, ["all", *values]))
    css = "".join(f"#{i}:checked~.battles .battle:not(.{group}{k}){{display:none}}" for k, i in enumerate(ids) if k) \
        + "".join(f"#{i}:checked~.chips label[for='{i}']{{background:#333;color:#fff}}" for i in ids)
    return inputs, labels, css


def browser_section(view: ArenaView, prefix: str) -> str:
    """Every battle (up to the cap): filter by model pair or instruction, open one to read both answers and
    the judge's explanation in each order."""
    if not view.battles:
        return ""
    e = html.escape
    pairs = sorted({f"{b['model_a']} vs {b['model_b']}" for b in view.battles})
    questions = sorted({b["question_id"] for b in view.battles})
    pair_in, pair_labels, pair_css = _chips(prefix, "p", pairs)
    q_in, q_labels, q_css = _chips(prefix, "q", questions)
    items = []
    for b in view.battles:
        pair = pairs.index(f"{b['model_a']} vs {b['model_b']}") + 1
        classes = f"battle p{pair} q{questions.index(b['question_id']) + 1}"
        scores = "" if b["score_a"] is None else f" ({b['score_a']:g} / {b['score_b']:g})"
        items.append(
            f"<details class='{classes}'><summary>{e(b['question_id'])} · {e(b['model_a'])} vs {e(b['model_b'])} → "
            f"{e(b['winner'])}{scores}</summary><p class='prompt'>{e(b['prompt'])}</p><div class='answers'>"
            f"<div><h4>{e(b['model_a'])}</h4><pre>{e(b['text_a'])}</pre></div>"
            f"<div><h4>{e(b['model_b'])}</h4><pre>{e(b['text_b'])}</pre></div></div>"
            f"<p>Judge, {e(b['model_a'])} shown first:</p><p class='said'>{e(b['explanation_ab'])}</p>"
            f"<p>Judge, {e(b['model_b'])} shown first:</p><p class='said'>{e(b['explanation_ba'])}</p></details>")
    shown = f"{len(view.battles)} of {view.battles_total}" if view.battles_total > len(view.battles) else \
        f"all {len(view.battles)}"
    return (f"<h3>Battles ({shown})</h3><style>{pair_css}{q_css}</style><div class='browser'>{pair_in}{q_in}"
            f"<div class='chips'>Model pair: {pair_labels}</div><div class='chips'>Instruction: {q_labels}</div>"
            f"<div class='battles'>{''.join(items)}</div></div>")


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


def _num(v, digits: int = 2) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def flywheel_section(data: ReportData) -> str:
    fw = data.flywheel

    def line(r: dict, version: str, stage: str, m: dict) -> list:
        return [r["iteration"], version, stage, rating_text(m), head_to_head_text(m.get("head_to_head")),
                _num(m.get("lc_win_rate")), _num(m.get("raw_win_rate")), _num(m.get("mean_length"), 0),
                _num(m.get("judge_score")),
                ", ".join(f"{k}: {v:.2f}" for k, v in (m.get("win_rate") or {}).items())]
    rows = []
    for r in fw.rows:  # each rated stage version (eval_every_stage), then the iteration's version
        rows += [line(r, s["version"], s["method"], s["measures"]) for s in r["stages"] if s.get("measures")]
        rows.append(line(r, r["version"], r["stages"][-1]["method"] if r["stages"] else "base", r))
    head = ["iteration", "version", "stage", "rating (95% CI)", "vs the start (95% CI) W/T/L", "LC win rate",
            "raw win rate", "mean length", "judge score", "win rate"]
    parts = ["<h2>Iterations</h2>", _table(head, rows),
             f"<figure class='plot'>{plots.ratings_by_iteration(fw.rows)}</figure>"]
    if any(r["stages"] for r in fw.rows):
        parts.append(f"<figure class='plot'>{plots.data_volume(fw.rows)}</figure>")
    if fw.curves:
        parts.append(f"<figure class='plot'>{plots.training_curves(fw.curves)}</figure>")
    return "".join(parts)


def render(data: ReportData) -> str:
    arenas = "".join(arena_section(a, f"a{k}") for k, a in enumerate(data.arenas))
    body = (flywheel_section(data) if data.flywheel else "") + arenas
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(data.title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(data.title)}</h1>{body}</body></html>\n")


def write_report(run_dir: str | Path, out: Optional[str | Path] = None) -> Path:
    data = collect(run_dir)  # what to report on first: a bad run directory is named as the input it is
    path = output_file(Path(out) if out else Path(run_dir) / "report.html", [run_dir], own=("report.html",))
    path.write_text(render(data), encoding="utf-8")
    return path
