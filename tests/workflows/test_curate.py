import json

import pyarrow.parquet as pq
import pytest

from arena_ray.arena.ledger import Ledger, save_instructions
from arena_ray.data.curate import Thresholds, counts_by_threshold, curate
from arena_ray.errors import InputError
from arena_ray.records import Battle, Generation, Instruction
from arena_ray.workflows.curate import export


def battle(q, a, b, winner, sa, sb):
    return Battle(f"{q}-{a}-{b}", q, a, b, winner, sa, sb, True, "j", "v")


BATTLES = [
    battle("q1", "big", "target", "model_a", 9, 4),      # target lost by 5 → SFT, DPO, RM
    battle("q1", "mid", "target", "model_a", 8, 6.5),    # lost by 1.5 → nothing at default gaps
    battle("q2", "target", "mid", "model_a", 8, 5),      # target won by 3 → DPO (target chosen), RM
    battle("q3", "big", "mid", "model_a", 9, 6),         # not the target's → RM only
    battle("q4", "big", "target", "tie", 7, 7),          # ties never become data
]
PROMPTS = {q: f"prompt {q}" for q in ("q1", "q2", "q3", "q4")}
ANSWERS = {(q, m): f"{m} answers {q}" for q in PROMPTS for m in ("big", "mid", "target")}


def test_curation_follows_the_paper_rules():
    c = curate(BATTLES, PROMPTS, ANSWERS, "target", Thresholds(sft_gap=3.0, dpo_gap=2.0, rm_gap=2.0))
    assert [(e.instruction_id, e.response, e.source_model) for e in c.sft] == [("q1", "big answers q1", "big")]
    assert [(p.instruction_id, p.chosen_model, p.rejected_model) for p in c.dpo] == [("q1", "big", "target"),
                                                                                   ("q2", "target", "mid")]
    assert [p.instruction_id for p in c.rm] == ["q1", "q2", "q3"]
    assert c.dpo[0].prompt == "prompt q1" and c.dpo[0].score_gap == 5
    assert [q for q, _ in c.ppo_prompts] == ["q1", "q2", "q4"]


def test_sft_keeps_the_best_teacher_per_instruction():
    two = [battle("q1", "mid", "target", "model_a", 8, 4), battle("q1", "big", "target", "model_a", 9.5, 4)]
    c = curate(two, PROMPTS, ANSWERS, "target", Thresholds(sft_gap=3.0))
    assert [(e.instruction_id, e.source_model) for e in c.sft] == [("q1", "big")]


def test_counts_by_threshold_shrink():
    rows = counts_by_threshold(BATTLES, "target", gaps=(0, 2, 4, 6))
    assert [r["rm"] for r in rows] == [5 - 1, 3, 1, 0]
    assert [r["sft"] for r in rows] == [1, 1, 1, 0]


def make_run(tmp_path):
    save_instructions(tmp_path, [Instruction(q, t, "s") for q, t in PROMPTS.items()])
    Ledger(tmp_path).append_generations([Generation(q, m, a, 1, 1, 0.0, "stop") for (q, m), a in ANSWERS.items()])
    (tmp_path / "battles.jsonl").write_text("\n".join(json.dumps(b.__dict__) for b in BATTLES) + "\n")
    return tmp_path


def test_export_writes_trl_keys_with_provenance(tmp_path):
    run = make_run(tmp_path / "run")
    report = export(run, "target", tmp_path / "out", Thresholds())
    assert (report["sft"], report["dpo"], report["rm"], report["ppo_prompts"]) == (1, 2, 3, 3)
    sft = pq.read_table(tmp_path / "out/sft.parquet").to_pylist()
    assert sft[0]["messages"] == [{"role": "user", "content": "prompt q1"},
                                  {"role": "assistant", "content": "big answers q1"}]
    dpo = pq.read_table(tmp_path / "out/dpo.parquet").to_pylist()
    assert {"prompt", "chosen", "rejected", "battle_id"} <= set(dpo[0]) and dpo[0]["battle_id"] == "q1-big-target"
    assert dpo[0]["prompt"] == [{"role": "user", "content": "prompt q1"}]
    assert dpo[0]["chosen"] == [{"role": "assistant", "content": "big answers q1"}]


def test_curated_files_are_what_trl_reads_as_conversations(tmp_path, smollm2_dir):
    """TRL's own dataset checks on the written files, with a chat model's tokenizer: each row is conversational
    and TRL's chat-template step turns it into the model's chat format."""
    from transformers import AutoTokenizer
    from trl.data_utils import is_conversational, maybe_apply_chat_template

    export(make_run(tmp_path / "run"), "target", tmp_path / "out", Thresholds())
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    for name in ("sft", "dpo", "rm"):
        for row in pq.read_table(tmp_path / "out" / f"{name}.parquet").to_pylist():
            assert is_conversational(row), name
            applied = maybe_apply_chat_template(row, tokenizer)
            key = "text" if name == "sft" else "prompt"
            assert "<|im_start|>user" in applied[key] and "prompt q" in applied[key], (name, applied)
            if name != "sft":
                assert applied["chosen"].startswith(row["chosen"][0]["content"]) and "<|im_end|>" in applied["chosen"]


def test_export_bad_inputs(tmp_path):
    run = make_run(tmp_path / "run")
    with pytest.raises(InputError, match="target 'ghost' fought no battle"):
        export(run, "ghost", tmp_path / "out", Thresholds())
    report = export(run, "target", tmp_path / "none", Thresholds(sft_gap=99, dpo_gap=99, rm_gap=99))
    assert report["sft"] == report["dpo"] == report["rm"] == 0  # a defined outcome: empty files, a warning
    assert pq.read_table(tmp_path / "none/dpo.parquet").num_rows == 0
    with pytest.raises(InputError, match="no battles"):
        export(tmp_path, "target", tmp_path / "x", Thresholds())
