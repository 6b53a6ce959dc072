"""The judge-card engine with a fake judge (the real one: tests/workflows/test_judge_card.py): both orders
asked, the arena's parsing and combining, a per-item parquet the card can be recomputed from, resumable,
cached by judge fingerprint."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from arena_ray.arena import judge_eval
from arena_ray.arena.scheduler import judge_settings, retry_policy
from arena_ray.data.preferences import load_card_pairs
from arena_ray.judging.prompts import load_template
from arena_ray.settings import from_dict
from arena_ray.testing.fakes import LengthJudge
from tests.helpers import SHARED_DATA, tiny_config_dict


class Judge(LengthJudge):
    capacity = 4

    def __init__(self, flip_every: int = 0):
        super().__init__()
        self.flip_every = flip_every

    async def generate(self, request):
        c = await super().generate(request)
        if self.flip_every and self.calls % self.flip_every == 0:  # now and then, the first-shown answer wins
            return type(c)("9 1\nThe first one.", 100, 4, "stop", 0.0)
        return c


def config(tmp_path, **judge):
    data = tiny_config_dict(tmp_path / "run", tmp_path / "model")
    data["judge"].update({"card": True, "card_cache_dir": str(tmp_path / "cards"), **judge})
    return from_dict(data)


def measure(cfg, client, out, files=None, limit=None):
    js = judge_settings(cfg, load_template(cfg.judge.prompt))
    return judge_eval.measure(cfg, js, client if isinstance(client, dict) else {js.name: client}, retry_policy(cfg),
                              files, limit, out, show=False)


def test_card_is_recomputed_from_the_per_item_file(tmp_path):
    cfg = config(tmp_path)
    files = [str(SHARED_DATA / "preferences" / "llmbar_natural.json"), str(SHARED_DATA / "preferences" / "faireval.json")]
    card = measure(cfg, Judge(flip_every=5), tmp_path / "eval", files, limit=10)
    rows = pq.read_table(tmp_path / "eval" / "judge_eval.parquet").to_pylist()
    assert [r["id"] for r in rows] == [p.pair_id for p in load_card_pairs(files, 10)] and len(rows) == 20
    assert set(rows[0]) == {"id", "human", "verdict", "verdict_ab", "verdict_ba", "score_a", "score_b"}
    judged = [r for r in rows if r["verdict"] is not None]
    decisive = [r for r in judged if r["human"] != "tie"]
    both = [r for r in rows if r["verdict_ab"] and r["verdict_ba"]]
    assert card["accuracy"] == round(sum(r["verdict"] == r["human"] for r in judged) / len(judged), 4)
    assert card["accuracy_decisive"] == round(sum(r["verdict"] == r["human"] for r in decisive) / len(decisive), 4)
    assert card["position_consistency"] == round(sum(r["verdict_ab"] == r["verdict_ba"] for r in both) / len(both), 4)
    assert card["position_consistency"] < 1.0  # the flips show
    saved = json.loads((tmp_path / "eval" / "judge_card.json").read_text())
    assert saved == card and "Judge card: tiny" in (tmp_path / "eval" / "judge_card.md").read_text()
    assert json.loads((tmp_path / "cards" / f"{card['fingerprint']}.json").read_text()) == card


def test_resume_asks_only_for_what_is_missing(tmp_path):
    cfg, judge = config(tmp_path), Judge()
    first = measure(cfg, judge, tmp_path / "eval", limit=6)
    assert judge.calls == 12                      # 6 pairs, both orders
    lines = (tmp_path / "eval" / "judgments.jsonl").read_text().splitlines()
    (tmp_path / "eval" / "judgments.jsonl").write_text("\n".join(lines[:7]) + "\n" + lines[7][:20])  # torn
    again = Judge()
    assert measure(cfg, again, tmp_path / "eval", limit=6) == first
    assert again.calls == 5


def test_an_arena_run_reuses_the_card_of_the_same_judge_only(tmp_path):
    cfg, judge = config(tmp_path, card_limit=4), Judge()
    js = judge_settings(cfg, load_template(cfg.judge.prompt))
    run = tmp_path / "run"
    card = judge_eval.for_run(cfg, js, {js.name: judge}, retry_policy(cfg), run, show=False)
    assert judge.calls == 8 and json.loads((run / "judge_card.json").read_text()) == card
    other_run = tmp_path / "run2"
    assert judge_eval.for_run(cfg, js, {js.name: judge}, retry_policy(cfg), other_run, show=False) == card
    assert judge.calls == 8                       # cached by fingerprint
    changed = config(tmp_path, card_limit=4, tie_margin=1.0)   # another verdict rule: measured again
    assert judge_eval.fingerprint(changed, None, 4) != card["fingerprint"]
    judge_eval.for_run(changed, js, {js.name: judge}, retry_policy(changed), tmp_path / "run3", show=False)
    assert judge.calls == 16
    off = config(tmp_path, card=False)
    assert judge_eval.for_run(off, js, {js.name: judge}, retry_policy(off), tmp_path / "run4", show=False) is None


@pytest.mark.parametrize("field", ["max_attempts", "cache_dir", "card_cache_dir"])
def test_bookkeeping_does_not_change_the_fingerprint(tmp_path, field):
    value = {"max_attempts": 7, "cache_dir": str(tmp_path / "c"), "card_cache_dir": str(tmp_path / "d")}[field]
    assert judge_eval.fingerprint(config(tmp_path), None, None) == \
        judge_eval.fingerprint(config(tmp_path, **{field: value}), None, None)


def test_a_reasoning_first_judge_is_read_from_its_last_line(tmp_path):
    class Reasoner(Judge):
        async def generate(self, request):
            c = await super().generate(request)
            first, rest = c.text.split("\n", 1)
            return type(c)(f"My own answer first.\n{rest}\nScores: {first}", 100, 9, "stop", 0.0)

    cfg = config(tmp_path, prompt="pairwise-v4-reasoning")
    card = measure(cfg, Reasoner(), tmp_path / "eval", limit=6)
    assert card["judged"] == 6 and card["position_consistency"] == 1.0
    plain = measure(config(tmp_path), Judge(), tmp_path / "eval-plain", limit=6)
    assert card["accuracy"] == plain["accuracy"]   # same scores, read from the other end


def test_a_config_without_an_arena_section_can_measure_its_judge(tmp_path):
    data = tiny_config_dict(tmp_path / "run", tmp_path / "model")
    del data["arena"]
    data["judge"]["card_cache_dir"] = str(tmp_path / "cards")
    cfg = from_dict(data)
    card = measure(cfg, Judge(), tmp_path / "eval", limit=3)
    assert card["items"] == 3 and retry_policy(cfg).timeout_s == 600.0
