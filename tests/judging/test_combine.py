import pytest

from arena_ray.judging.combine import combine_games, winner_of
from arena_ray.records import Judgment


def game(pos, a, b, wa=None, wb=None, ok=True):
    return Judgment(battle_id="b1", instruction_id="q1", model_a="alpha", model_b="beta", position=pos, attempt=0,
                    score_a=a, score_b=b, weighted_score_a=wa, weighted_score_b=wb, explanation="", raw="",
                    judge="j", prompt_version="pairwise-v1", parse_ok=ok)


def test_agreeing_games_average_scores():
    b = combine_games(game(0, 8, 6), game(1, 9, 5), disagreement="average", tie_margin=0, use_weighted=False)
    assert (b.winner, b.score_a, b.score_b, b.consistent) == ("model_a", 8.5, 5.5, True)


@pytest.mark.parametrize("rule, expected", [("average", "model_b"), ("tie", "tie"), ("discard", None)])
def test_disagreement_rules(rule, expected):
    # game 0 favours a by 1, game 1 favours b by 3: averaged, b wins
    b = combine_games(game(0, 7, 6), game(1, 5, 8), disagreement=rule, tie_margin=0, use_weighted=False)
    if expected is None:
        assert b is None
    else:
        assert b.winner == expected and not b.consistent


def test_tie_margin_and_weighted_scores():
    assert winner_of(7.2, 7.0, 0.5) == "tie"
    b = combine_games(game(0, 10, 10, 8.0, 6.0), game(1, 10, 10, 7.5, 6.5), disagreement="average",
                      tie_margin=0, use_weighted=True)
    assert b.winner == "model_a" and b.score_a == pytest.approx(7.75)
    # weighted unavailable in one game: that game falls back to the written scores
    b = combine_games(game(0, 10, 10, 8.0, 6.0), game(1, 10, 10), disagreement="average", tie_margin=0,
                      use_weighted=True)
    assert b.score_a == pytest.approx(9.0) and b.score_b == pytest.approx(8.0)


def test_refuses_unparsed_or_same_position():
    with pytest.raises(ValueError):
        combine_games(game(0, 8, 6), game(1, None, None, ok=False), disagreement="average", tie_margin=0,
                      use_weighted=False)
    with pytest.raises(ValueError):
        combine_games(game(0, 8, 6), game(0, 8, 6), disagreement="average", tie_margin=0, use_weighted=False)
