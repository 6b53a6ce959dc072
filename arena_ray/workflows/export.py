"""`arena-ray export`: a run directory in the files other tools read.

- `alpaca-eval RUN OUT`: each model's answers in AlpacaEval's `model_outputs.json` form, one folder per model, so
  `alpaca_eval --model_outputs OUT/M/model_outputs.json --reference_outputs OUT/R/model_outputs.json` compares
  any two of them (AlpacaEval pairs outputs by `instruction`).
- `arena-hard RUN OUT --baseline M`: answers and the judge's verdicts against the baseline in arena-hard-auto's
  `model_answer/` and `model_judgment/<judge>/` layout, for its show_result.py."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional, Sequence

from arena_ray.arena.ledger import Ledger, load_instructions_of
from arena_ray.errors import InputError
from arena_ray.records.outputs import output_dir
from arena_ray.records.tables import write_text_atomic
from arena_ray.settings.arena import ARENA_HARD_STRONG_GAP
from arena_ray.settings.names import name_problem

log = logging.getLogger(__name__)


def export_alpaca_eval(run_dir: str | Path, out_dir: str | Path, models: Optional[Sequence[str]] = None) -> dict:
    """OUT/<model>/model_outputs.json: `[{instruction, output, generator, dataset, instruction_id}]` for every
    single-turn instruction the model answered (AlpacaEval is single-turn; multi-turn ones are left out and
    counted). Returns {model: rows written}."""
    run, out = Path(run_dir), output_dir(out_dir, [run_dir], name="OUT")
    instructions = load_instructions_of(run)
    answers = _answers(run, instructions)
    unknown = sorted(set(models or ()) - set(answers))
    if unknown:
        raise InputError(f"{run}: no answers of {unknown} (models: {sorted(answers)})")
    single = [i for i in instructions.values() if not i.turns]
    if len(single) < len(instructions):
        log.warning("export: %d multi-turn instructions left out (AlpacaEval is single-turn)",
                    len(instructions) - len(single))
    written = {}
    for model in models or sorted(answers):
        rows = [{"instruction": i.text, "output": answers[model][i.instruction_id], "generator": model,
                 "dataset": i.source, "instruction_id": i.instruction_id}
                for i in single if i.instruction_id in answers[model]]
        write_text_atomic(out / model / "model_outputs.json", json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
        written[model] = len(rows)
    return written


def _label(first: float, second: float, tie_margin: float, strong_gap: float) -> str:
    """arena-hard's verdict label for one game, A being the answer shown first."""
    gap = first - second
    if abs(gap) <= tie_margin:
        return "A=B"
    strong = abs(gap) >= strong_gap
    return ("A>>B" if strong else "A>B") if gap > 0 else ("B>>A" if strong else "B>A")


def export_arena_hard(run_dir: str | Path, out_dir: str | Path, baseline: str, tie_margin: float = 0.0,
                      strong_gap: float = ARENA_HARD_STRONG_GAP) -> dict:
    """arena-hard-auto's v0.1 layout (its show_result.py at 0489bf3): OUT/model_answer/<model>.jsonl
    (`question_id, answer_id, model_id, choices[{index, turns[{content}]}]`) and
    OUT/model_judgment/<judge>/<model>.jsonl, one row per battle of `model` against `baseline` with `games`:
    game 1 shows the baseline as A, game 2 the model as A, each scored `A>>B | A>B | A=B | B>A | B>>A` from the
    judge's two 1-10 scores. Single-turn instructions only. Returns counts per file."""
    run, out = Path(run_dir), output_dir(out_dir, [run_dir], name="OUT")
    instructions = {k: i for k, i in load_instructions_of(run).items() if not i.turns}
    answers = _answers(run, instructions)
    if baseline not in answers:
        raise InputError(f"{run}: the baseline '{baseline}' has no answers here (models: {sorted(answers)})")
    counts: dict[str, int] = {}
    for model, texts in sorted(answers.items()):
        rows = [{"question_id": q, "answer_id": f"{model}:{q}", "model_id": model,
                 "choices": [{"index": 0, "turns": [{"content": t}]}]} for q, t in sorted(texts.items())]
        counts[f"model_answer/{model}.jsonl"] = _write_jsonl(out / "model_answer" / f"{model}.jsonl", rows)
    judged: dict[tuple[str, str], dict[int, object]] = {}
    for j in Ledger(run).judgments():  # the last parsed game of each battle and order, per judge
        if j.parse_ok and j.instruction_id in instructions and baseline in (j.model_a, j.model_b):
            _file_name(j.judge, run, "judge")
            judged.setdefault((j.judge, j.battle_id), {})[j.position] = j
    if not judged:
        log.warning("export: no judged battle against '%s' in %s: model_judgment/ left empty", baseline, run)
    rows_by: dict[tuple[str, str], list[dict]] = {}
    for (judge, _), games in sorted(judged.items()):
        if set(games) != {0, 1}:
            continue
        first = games[0]
        model = first.model_b if first.model_a == baseline else first.model_a
        # our position p shows model_a first when p == 0; arena-hard's game 1 shows the baseline first
        order = [games[0], games[1]] if first.model_a == baseline else [games[1], games[0]]
        row_games = []
        for g in order:
            shown_first = (g.score_a, g.score_b) if g.position == 0 else (g.score_b, g.score_a)
            row_games.append({"user_prompt": "", "judgment": g.explanation,
                              "score": _label(*shown_first, tie_margin, strong_gap)})
        rows_by.setdefault((judge, model), []).append(
            {"question_id": first.instruction_id, "model": model, "judge": judge, "games": row_games})
    for (judge, model), rows in sorted(rows_by.items()):
        counts[f"model_judgment/{judge}/{model}.jsonl"] = _write_jsonl(
            out / "model_judgment" / judge / f"{model}.jsonl", rows)
    return counts


def _answers(run: Path, instructions: dict) -> dict[str, dict[str, str]]:
    """model → instruction id → its answer; model names checked, as they become file names."""
    if not (run / "generations.parquet").exists() and not (run / "ledger").is_dir():
        raise InputError(f"{run}: no answers recorded (neither generations.parquet nor ledger/)")
    answers: dict[str, dict[str, str]] = {}
    for g in Ledger(run).generations():
        if not g.error and g.instruction_id in instructions:
            answers.setdefault(_file_name(g.model, run, "model"), {})[g.instruction_id] = g.text
    if not answers:
        raise InputError(f"{run}: no answers to export")
    return answers


def _file_name(name: str, run: Path, what: str) -> str:
    problem = name_problem(name, in_config=True)
    if problem:
        raise InputError(f"{run}: the {what} name {name[:40]!r} {problem}; it cannot name a file")
    return name


def _write_jsonl(path: Path, rows: list[dict]) -> int:
    write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return len(rows)
