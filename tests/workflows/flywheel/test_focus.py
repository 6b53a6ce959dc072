"""flywheel.focus: weakest — the next stage battles its shard's instructions of the categories the target lost
most in during the previous iteration (its arena run directories), and the summary reports each category's
win rate before and after (real arena-hard prompts; `coding` derived from their text)."""
from __future__ import annotations

import json

from arena_ray.arena.ledger import save_instructions
from arena_ray.data.ingest import load_instructions
from arena_ray.rating.focus import instruction_category
from arena_ray.settings import from_dict
from arena_ray.workflows.flywheel import focus
from arena_ray.workflows.flywheel.plan import plan
from arena_ray.workflows.flywheel.summary import focus_markdown
from tests.conftest import SHARED_DATA
from tests.helpers import tiny_config_dict

ARENA_HARD = SHARED_DATA / "instructions" / "arena_hard_v0.1.jsonl"


def run_dir(path, instructions, winner_of):
    """An arena run directory as the flywheel reads one: its instructions and battles.jsonl."""
    save_instructions(path, instructions)
    rows = [{"question_id": i.instruction_id, "model_a": "gpt-4-0314", "model_b": "tiny@0", "winner": winner_of(i)}
            for i in instructions]
    (path / "battles.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_focused_shard_starts_with_the_weakest_category_and_the_report_compares(tmp_path):
    data = tiny_config_dict(tmp_path / "unused", tmp_path)
    data["flywheel"] = {"dir": str(tmp_path / "fw"), "target": "tiny", "competitors": ["gpt-4-0314"],
                        "data": {"sources": [{"path": str(ARENA_HARD)}]}, "focus": "weakest", "focus_by": "coding",
                        "instructions_per_shard": 6}
    config = from_dict(data)
    root = tmp_path / "fw"
    code = lambda i: instruction_category(i, "coding") == "code"  # noqa: E731
    # Iteration 1: the target lost every coding battle and won the others.
    before = load_instructions(ARENA_HARD, limit=30)
    previous = run_dir(root / "battles" / "D0-tiny@0", before, lambda i: "model_a" if code(i) else "model_b")
    shard = root / "D1.parquet"
    save_instructions(tmp_path / "shard", load_instructions(ARENA_HARD, offset=30, limit=30))
    (tmp_path / "shard" / "instructions.parquet").rename(shard)

    stage = plan("tiny", 2, ["sft"], True)[1]
    out = root / "battles" / f"{stage.battle_key}-focus"
    chosen = load_instructions(focus.instructions(config, out, shard, [previous]))
    assert len(chosen) == 6 and all(code(i) for i in chosen)
    recorded = json.loads((out / "done.json").read_text())
    assert recorded["before"]["code"]["win_rate"] == 0.0 and recorded["before"]["no code"]["win_rate"] == 1.0
    assert focus.instructions(config, out, shard, []) == out / "instructions.parquet"  # once: not chosen again

    # Iteration 2 battled the focused instructions and now wins half of them.
    run_dir(root / "battles" / stage.battle_key, chosen, lambda i: "tie")
    report = focus.report(config, root, [stage])
    n_before = recorded["before"]["code"]["battles"]
    assert report == {"by": "coding", "categories": {"code": {"before": {"win_rate": 0.0, "battles": n_before},
                                                              "after": {"win_rate": 0.5, "battles": 6}}}}
    table = focus_markdown([{"iteration": 2, "focus": report}])
    assert "### Iteration 2: focused by coding" in table and f"| code | 0.00 | {n_before} | 0.50 | 6 |" in table
