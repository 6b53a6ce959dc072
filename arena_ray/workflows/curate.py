"""`arena-ray curate`: a run directory's battles → sft/dpo/rm/ppo Parquet files in the keys TRL and OpenRLHF
read (`messages`; `prompt, chosen, rejected`; `prompt`), each row keeping its battle id for provenance."""
from __future__ import annotations

import logging
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from arena_ray.arena.ledger import Ledger, load_instructions_of
from arena_ray.data.battles import read_jsonl
from arena_ray.data.curate import Thresholds, counts_by_threshold, curate
from arena_ray.data.ingest import iter_jsonl
from arena_ray.errors import InputError
from arena_ray.records import Battle
from arena_ray.records.outputs import output_dir
from arena_ray.records.tables import json_text, write_atomic
from arena_ray.train.formats import MESSAGES, preference_messages

log = logging.getLogger(__name__)


def load_run(run_dir: Path) -> tuple[list[Battle], dict[str, str], dict[tuple[str, str], str]]:
    path = run_dir / "battles.jsonl"
    rows = list(iter_jsonl(path)) if path.exists() else []
    if not rows:
        raise InputError(f"{run_dir}: no battles (battles.jsonl missing or empty)")
    read_jsonl(path)  # validates every record (winner labels, model fields), naming the line of a bad one
    instructions = load_instructions_of(run_dir)
    battles = [_battle(r, where, instructions) for where, r in rows]
    # Multi-turn battles rate the models but make no training data here: an SFT or DPO record would need the
    # winner's whole conversation, not its last answer after the first question.
    multi = [b for b in battles if b.question_id in instructions and instructions[b.question_id].turns]
    if multi:
        log.warning("curate: %d multi-turn battles left out (their data would need whole conversations)",
                    len(multi))
    prompts = {i: inst.text for i, inst in instructions.items() if not inst.turns}
    answers = {(g.instruction_id, g.model): g.text for g in Ledger(run_dir).generations() if not g.error}
    return [b for b in battles if b not in multi], prompts, answers


def _battle(record: dict, where: str, instructions: dict) -> Battle:
    """A battles.jsonl record with the fields curation reads checked: finite scores, a known instruction."""
    for key in ("score_a", "score_b"):
        value = record.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError(f"{where}: field '{key}' must be a finite number, got {value!r}")
    if record.get("question_id") not in instructions:
        raise InputError(f"{where}: field 'question_id' {record.get('question_id')!r} is not in instructions.parquet")
    return Battle(**{k: record[k] for k in Battle.__dataclass_fields__ if k in record})


def export(run_dir: str | Path, target: str, out_dir: str | Path, thresholds: Thresholds) -> dict:
    run_dir, out = Path(run_dir), output_dir(out_dir, [run_dir])
    battles, prompts, answers = load_run(run_dir)
    models = {m for b in battles for m in (b.model_a, b.model_b)}
    if target not in models:
        raise InputError(f"{run_dir}: target '{target}' fought no battle (models: {sorted(models)})")
    data = curate(battles, prompts, answers, target, thresholds)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(pa.Table.from_pylist([
        {"messages": [{"role": "user", "content": e.prompt}, {"role": "assistant", "content": e.response}],
         "instruction_id": e.instruction_id, "source_model": e.source_model, "battle_id": e.battle_id,
         "score_gap": e.score_gap} for e in data.sft]) if data.sft else _empty_sft(), out / "sft.parquet")
    for name, pairs in (("dpo", data.dpo), ("rm", data.rm)):
        write_atomic(pa.Table.from_pylist([{**p.__dict__, **preference_messages(p.prompt, p.chosen, p.rejected)}
                                           for p in pairs], schema=PAIR_SCHEMA), out / f"{name}.parquet")
    write_atomic(pa.table({"instruction_id": [q for q, _ in data.ppo_prompts], "prompt": [p for _, p in data.ppo_prompts]}),
                 out / "ppo_prompts.parquet")
    report = {"run_dir": str(run_dir), "target": target, "thresholds": thresholds.__dict__,
              "sft": len(data.sft), "dpo": len(data.dpo), "rm": len(data.rm), "ppo_prompts": len(data.ppo_prompts),
              "by_threshold": counts_by_threshold(battles, target)}
    for name in ("sft", "dpo", "rm"):
        if not report[name]:
            log.warning("curate: thresholds leave no %s data for target '%s' (see by_threshold in the report)",
                        name, target)
    (out / "curate_report.json").write_text(json_text(report, indent=2) + "\n")
    return report


# dpo.parquet / rm.parquet: TRL's conversational preference columns, then where each pair came from.
PAIR_SCHEMA = pa.schema([("prompt", MESSAGES), ("chosen", MESSAGES), ("rejected", MESSAGES),
                         ("instruction_id", pa.string()), ("chosen_model", pa.string()),
                         ("rejected_model", pa.string()), ("battle_id", pa.string()), ("score_gap", pa.float64())])


def _empty_sft() -> pa.Table:
    return pa.table({"messages": pa.array([], MESSAGES), "instruction_id": pa.array([], pa.string())})


def read(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()
