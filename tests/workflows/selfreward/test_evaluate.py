"""The self-rewarding loop's measures from its eval battles: head-to-head against M0 with an interval, raw and
length-controlled win rate against the reference, answer length; and the reward-hacking guard, which fires for a
fake policy that only lengthens its answers (real arena-hard prompts and gpt-4-0314's recorded answers)."""
from __future__ import annotations

from arena_ray.data.answers import load_answers
from arena_ray.data.battles import BattleRow
from arena_ray.rating.winrates import length_hacking
from arena_ray.settings import from_dict
from arena_ray.workflows.selfreward.evaluate import measures
from arena_ray.workflows.selfreward.loop import guard_rows
from tests.conftest import SHARED_DATA
from tests.helpers import tiny_config_dict

REF = "gpt-4-0314"
ANSWERS = load_answers(SHARED_DATA / "answers" / "arena_hard_v0.1" / "gpt-4-0314.jsonl")
MINE = load_answers(SHARED_DATA / "answers" / "arena_hard_v0.1" / "gpt-3.5-turbo-0125.jsonl")


def config(tmp_path):
    data = tiny_config_dict(tmp_path / "unused", tmp_path)
    data["self_reward"] = {"dir": str(tmp_path / "sr"), "model": "tiny"}
    return from_dict(data)


def battles_vs_reference(model: str, texts: dict[str, str], verdicts: dict[str, str]) -> list[BattleRow]:
    """`model` as side b against the reference on each question; the verdict decides from the question alone
    (a judge that reads content, not length)."""
    return [BattleRow(REF, model, verdicts[q], q, ANSWERS[q], texts[q], fields=(("score_a", 6.0), ("score_b", 6.0)))
            for q in verdicts]


def test_a_policy_that_only_lengthens_its_answers_trips_the_guard(tmp_path):
    cfg = config(tmp_path)
    questions = sorted(set(ANSWERS) & set(MINE))[:40]
    verdicts = {q: ("model_b", "model_a", "tie", "model_a")[k % 4] for k, q in enumerate(questions)}
    m0 = battles_vs_reference("tiny@0", MINE, verdicts)
    padded = {q: MINE[q] + "\n\n" + MINE[q] for q in questions}  # the same answer, said twice
    m1 = battles_vs_reference("tiny@1", padded, verdicts)
    m1 += [BattleRow("tiny@0", "tiny@1", "tie", q, MINE[q], padded[q]) for q in questions]
    base, after = measures(cfg, m0, "tiny@0", []), measures(cfg, m1, "tiny@1", ["tiny@0"])
    assert after["mean_length"] > 1.9 * base["mean_length"]
    assert after["raw_win_rate"] == base["raw_win_rate"] == 0.375
    assert after["head_to_head"]["ties"] == 40 and after["head_to_head"]["win_rate"] == 0.5
    rows = [{"to": "tiny@1", "arena": after}]
    warning = length_hacking(guard_rows("tiny@0", base, rows), cfg.self_reward.max_length_growth)
    assert warning and "tiny@1" in warning and "tiny@0" in warning


def test_an_iteration_that_wins_more_at_the_same_length_is_no_hacking(tmp_path):
    cfg = config(tmp_path)
    questions = sorted(set(ANSWERS) & set(MINE))[:40]
    worse = {q: ("model_a", "model_a", "tie", "model_b")[k % 4] for k, q in enumerate(questions)}
    better = {q: ("model_b", "model_b", "tie", "model_a")[k % 4] for k, q in enumerate(questions)}
    base = measures(cfg, battles_vs_reference("tiny@0", MINE, worse), "tiny@0", [])
    after = measures(cfg, battles_vs_reference("tiny@1", MINE, better), "tiny@1", ["tiny@0"])
    assert after["lc_win_rate"] > base["lc_win_rate"] and after["mean_length"] == base["mean_length"]
    assert length_hacking(guard_rows("tiny@0", base, [{"to": "tiny@1", "arena": after}]), 1.5) is None
