"""`arena-ray export alpaca-eval RUN OUT`: a run directory's answers in AlpacaEval's `model_outputs.json` form,
one folder per model, so `alpaca_eval --model_outputs OUT/M/model_outputs.json --reference_outputs
OUT/R/model_outputs.json` compares any two of them (AlpacaEval pairs outputs by `instruction`)."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional, Sequence

from arena_ray.arena.ledger import Ledger, load_instructions_of
from arena_ray.errors import InputError
from arena_ray.records.outputs import output_dir

log = logging.getLogger(__name__)


def export_alpaca_eval(run_dir: str | Path, out_dir: str | Path, models: Optional[Sequence[str]] = None) -> dict:
    """OUT/<model>/model_outputs.json: `[{instruction, output, generator, dataset, instruction_id}]` for every
    single-turn instruction the model answered (AlpacaEval is single-turn; multi-turn ones are left out and
    counted). Returns {model: rows written}."""
    run, out = Path(run_dir), output_dir(out_dir, [run_dir])
    instructions = load_instructions_of(run)
    answers: dict[str, dict[str, str]] = {}
    for g in Ledger(run).generations():
        if not g.error and g.instruction_id in instructions:
            answers.setdefault(g.model, {})[g.instruction_id] = g.text
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
        folder = out / model
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / "model_outputs.json.tmp"
        tmp.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(folder / "model_outputs.json")
        written[model] = len(rows)
    return written
