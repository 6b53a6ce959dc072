"""Judge cards: the verdict of an item is the arena's (both orders combined), the metrics are shares over the
items, and the warning names what is weak."""
from __future__ import annotations

import pytest

from arena_ray.judging.card import (
    JudgeItem,
    board_lines,
    card,
    for_board,
    item_from,
    self_preference,
    to_markdown,
    warning,
)
from arena_ray.records import Battle, HumanPair, Judgment

PAIR = HumanPair("p", "q", "long answer", "short", 1)


def game(position: int, first: float, second: float) -> Judgment:
    """A game as the judge scored it: `first` for the answer shown first."""
    a, b = (first, second) if position == 0 else (second, first)
    return Judgment("p", "p", "a", "b", position, 0, a, b, None, None, "", "", "j", "v1", True)


@pytest.mark.parametrize("g0,g1,rule,verdict,ab,ba", [
    ((8, 4), (4, 8), "average", "a", "a", "a"),      # both orders prefer a
    ((8, 4), (8, 4), "average", "tie", "a", "b"),    # always the first shown: position bias, averages to a tie
    ((9, 4), (8, 6), "average", "a", "a", "b"),      # disagree; the averaged scores decide
    ((8, 4), (8, 4), "tie", "tie", "a", "b"),
    ((8, 4), (8, 4), "discard", None, "a", "b"),     # the arena drops it: no verdict
])
def test_item_combines_both_orders_as_the_arena_does(g0, g1, rule, verdict, ab, ba):
    item = item_from(PAIR, {0: game(0, *g0), 1: game(1, *g1)}, disagreement=rule, tie_margin=0.0,
                     use_weighted=False)
    assert (item.human, item.verdict, item.verdict_ab, item.verdict_ba) == ("a", verdict, ab, ba)
    assert (item.len_a, item.len_b) == (11, 5)


def test_an_unparsed_order_leaves_no_verdict():
    item = item_from(PAIR, {0: game(0, 8, 4)}, disagreement="average", tie_margin=0.0, use_weighted=False)
    assert (item.verdict, item.verdict_ab, item.verdict_ba) == (None, "a", None)


def items(spec: str) -> list[JudgeItem]:
    """One item per 'human verdict ab ba' triple-of-letters word, e.g. 'aaa' (t = tie, - = unparsed)."""
    m = {"a": "a", "b": "b", "t": "tie", "-": None}
    return [JudgeItem(str(i), m[w[0]], m[w[1]], m[w[2]], m[w[3]], None, None, len_a=10, len_b=5 + 10 * (i % 2))
            for i, w in enumerate(spec.split())]


def test_card_metrics_are_shares_over_the_items():
    c = card(items("aaaa bbbb aaba bata tttt aba- a-b-"), rounds=200)
    assert (c["items"], c["judged"], c["unparsed"], c["decisive"]) == (7, 6, 1, 5)
    assert c["accuracy"] == pytest.approx(4 / 6, abs=1e-4)              # aaaa bbbb aaba tttt
    assert c["accuracy_decisive"] == pytest.approx(3 / 5, abs=1e-4)     # the human ties are left out
    assert c["position_consistency"] == pytest.approx(3 / 5, abs=1e-4)  # of the 5 items with both orders
    assert c["tie_rate"] == pytest.approx(1 / 6, abs=1e-4) and c["human_tie_agreement"] == 1.0
    low, high = c["accuracy_ci"]
    assert 0 <= low <= c["accuracy"] <= high <= 1


def test_length_bias_counts_decisive_verdicts_between_unequal_answers():
    # even ids: a is longer (10 vs 5); odd ids: b is longer (10 vs 15)
    c = card(items("aaaa abbb aaaa abbb"))
    assert c["length_bias"] == 1.0               # picked a when a was longer, b when b was
    assert c["human_length_preference"] == 0.5   # people picked a both times


def test_a_weak_judge_is_flagged_with_reasons():
    strong = card(items(" ".join(["aaaa", "bbbb"] * 15)))
    assert strong["reliable"] and warning(strong) is None
    biased = card(items(" ".join(["aaba", "btab"] * 15)))   # verdict follows the order shown
    assert not biased["reliable"]
    assert "position consistency 0.0 < 0.6" in warning(biased)
    assert "not above chance" in warning(biased)
    assert "Warning: this ranking is not reliable" in to_markdown(biased)


def test_board_section_adds_the_run_and_self_preference():
    battles = [Battle(str(i), "q", "judge", "other", w, 5, 5, True, "judge", "v1")
               for i, w in enumerate(["model_a", "model_a", "model_b", "tie"])]
    own = self_preference(battles, "judge")
    assert own == {"rate": pytest.approx(2 / 3, abs=1e-4), "decisive_battles": 3}
    assert self_preference(battles, "nobody") is None
    strong = card(items(" ".join(["aaaa", "bbbb"] * 15)))
    board = for_board(strong, run_consistency=0.21, self_pref=own)
    assert not board["reliable"] and "79% of this run's battles" in warning(board)
    text = board_lines({**board, "judge": "judge"})
    assert "position consistency on this run's battles: 0.21" in text and "preferred its own answers in 0.67" in text
    unmeasured = for_board(None, run_consistency=0.9, self_pref=None)
    assert not unmeasured["reliable"] and "never measured" in warning(unmeasured)
