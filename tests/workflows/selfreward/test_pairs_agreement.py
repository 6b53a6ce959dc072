"""Self-rewarding's pure core: rubric parsing, best/worst pairs with ties dropped, agreement with humans."""
from __future__ import annotations

import json

import pytest

from arena_ray.data.preferences import load_pandalm, majority
from arena_ray.errors import ConfigError, InputError
from arena_ray.judging.agreement import agreement
from arena_ray.judging.parse import parse_rubric, rubric_span, weighted_score
from arena_ray.judging.prompts import load_rubric_template
from arena_ray.records import HumanPair, TokenLogprob
from arena_ray.workflows.selfreward.pairs import ScoredSample, histogram, select_pairs
from tests.conftest import SHARED_DATA


@pytest.mark.parametrize("raw,score", [
    ("The answer is relevant. Score: 4", 4.0), ("Score: 2\n", 2.0), ("score = 5 points", 5.0),
    ("Justification...\nScore: **3**", 3.0), ("Score: 1/5", 1.0), ("Score: 9", None), ("no score here", None),
    ("", None), ("first Score: 1 then final Score: 4", 4.0)])
def test_parse_rubric(raw, score):
    assert parse_rubric(raw) == score


def test_rubric_logprob_weighting_counts_one_as_one():
    raw = "Fine.\nScore: 1"
    span = rubric_span(raw)
    lps = [TokenLogprob("Fine.\nScore:", ()), TokenLogprob(" 1", ((" 1", -0.693), (" 3", -0.693)))]
    assert weighted_score(lps, span, raw, low=0.0, high=5.0) == pytest.approx(2.0)


def test_rubric_template_shipped_and_checked(tmp_path):
    t = load_rubric_template("rubric-additive-v1")
    msgs = t.messages("What is 2+2? {response}", "4 {instruction}")
    assert "What is 2+2? {response}" in msgs[-1].content and "<response>4 {instruction}</response>" in msgs[-1].content
    assert "Score: <total points>" in msgs[-1].content
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: rubric\nversion: x\nuser: '{response} {instruction}'\noutput_regex: x\n")
    with pytest.raises(ConfigError, match="instruction.*then.*response"):
        load_rubric_template(str(bad))


def s(iid, k, text, *scores):
    return ScoredSample(iid, f"prompt {iid}", k, text, scores)


def test_best_and_worst_form_the_pair_and_ties_are_dropped():
    samples = [s("a", 0, "mid", 3, 3, 3), s("a", 1, "best", 5, 4, None), s("a", 2, "worst", 1, 2, 1),
               s("b", 0, "x", 3, 3, 3), s("b", 1, "y", 3, 3, 3),           # all equal: a tie
               s("c", 0, "only", 4, 4, 4), s("c", 1, "unscored", None, None, None),  # one scored answer
               s("d", 0, "same", 5, 5, 5), s("d", 1, "same", 1, 1, 1)]     # identical texts give no signal
    out = select_pairs(samples)
    assert [(p.instruction_id, p.chosen, p.rejected) for p in out.pairs] == [("a", "best", "worst")]
    assert out.pairs[0].chosen_score == 4.5 and out.pairs[0].rejected_score == pytest.approx(4 / 3)
    assert (out.dropped_ties, out.dropped_unscored) == (2, 1)
    report = out.report(samples)
    assert report["pairs_kept"] == 1 and report["judgments_unparsed"] == 4
    assert report["score_histogram"] == {"0": 0, "1": 5, "2": 1, "3": 9, "4": 4, "5": 4}
    assert select_pairs(samples, min_gap=4.0).pairs == []   # gap 3.17 <= 4: a tie too


def test_all_ties_iteration_gives_no_pairs():
    out = select_pairs([s("a", k, f"t{k}", 3) for k in range(4)])
    assert out.pairs == [] and out.dropped_ties == 1
    assert histogram([0.4, 4.6, 5]) == {"0": 1, "1": 0, "2": 0, "3": 0, "4": 0, "5": 2}


def test_pandalm_labels_and_agreement():
    pairs = load_pandalm(SHARED_DATA / "preferences" / "pandalm_testset.json", limit=50)
    assert 40 <= len(pairs) <= 50 and {p.label for p in pairs} <= {-1, 0, 1}
    assert majority([1, 1, 2]) == 1 and majority([0, 1, 2]) is None
    # A perfect judge agrees fully; the reversed judge not at all.
    perfect = {(p.pair_id, r): (4.0 if (r == 1) == (p.label > 0) else 2.0) if p.label else 3.0
               for p in pairs for r in (1, 2)}
    good = agreement(pairs, perfect)
    assert good["pairwise_accuracy"] == 1.0 and good["spearman"] > 0.9 and good["kendall_tau"] > 0.9
    flipped = agreement(pairs, {k: 6 - v for k, v in perfect.items()})
    assert flipped["pairwise_accuracy"] == 0.0 and flipped["spearman"] < -0.9
    # A judge that scores everything the same is never right and has no rank correlation.
    flat = agreement(pairs, {k: 3.0 for k in perfect})
    assert flat["pairwise_accuracy"] == 0.0 and flat["judge_tie_rate"] == 1.0 and flat["spearman"] is None
    missing = agreement([HumanPair("x", "q", "a", "b", 1)], {("x", 1): None, ("x", 2): 3.0})
    assert missing["scored"] == 0 and missing["pairwise_accuracy"] is None


def test_bad_pandalm_record_is_named(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps([{"instruction": "q", "response1": "a", "response2": "b", "annotator1": 1,
                                 "annotator2": 7, "annotator3": 1}]))
    with pytest.raises(InputError, match=r"p.json\[0\]: annotator labels"):
        load_pandalm(path)
