from arena_ray.arena.pairing import BattlePlan
from arena_ray.arena.progress import Game, game_states, tally
from arena_ray.records import Generation, Judgment


def judg(pb, pos, attempt, a=None, b=None):
    ok = a is not None
    return Judgment(pb.battle_id, pb.instruction_id, pb.model_a, pb.model_b, pos, attempt, a, b, None, None, "", "",
                    "j", "v", ok)


PLAN = list(BattlePlan(("q1", "q2"), (("a", "b"),), "j", "v"))
KW = dict(max_attempts=2, disagreement="average", tie_margin=0.0, use_weighted=False)


def test_game_states_settle_on_success_or_exhausted_attempts():
    pb = PLAN[0]
    states = game_states([judg(pb, 0, 0), judg(pb, 0, 1, 8, 2), judg(pb, 1, 0)])
    assert states[(pb.battle_id, 0)].ok is not None and states[(pb.battle_id, 0)].settled(2)
    assert states[(pb.battle_id, 1)].attempts == 1 and not states[(pb.battle_id, 1)].settled(2)
    assert states[(pb.battle_id, 1)].settled(1)


def test_tally_counts_battles_failures_and_pending():
    q1, q2 = PLAN
    judgments = [judg(q1, 0, 0, 8, 3), judg(q1, 1, 0, 7, 4),          # a wins q1
                 judg(q2, 0, 0), judg(q2, 0, 1), judg(q2, 1, 0, 5, 5)]  # q2 pos 0 failed twice
    t = tally(PLAN, judgments, [], **KW)
    assert [b.winner for b in t.battles] == ["model_a"]
    assert t.failed_battles == 1 and t.failed_by_model == {"a": 1, "b": 1}
    assert t.pending == 0
    t = tally(PLAN, judgments[:2], [], **KW)
    assert t.pending == 1 and t.failed_battles == 0


def test_missing_answer_fails_the_battle_not_a_tie():
    gens = [Generation("q2", "b", "", None, None, 0.0, "error", error="no recorded answer")]
    t = tally(PLAN, [], gens, **KW)
    assert t.failed_battles == 1 and t.pending == 1 and not t.battles


def test_discard_rule_counts_inconsistent():
    q1 = PLAN[0]
    t = tally(PLAN[:1], [judg(q1, 0, 0, 8, 3), judg(q1, 1, 0, 3, 8)], [],
              **{**KW, "disagreement": "discard"})
    assert t.discarded == 1 and t.inconsistent == 1 and not t.battles


def test_remaining_work_skips_settled_and_unanswerable():
    from arena_ray.arena.progress import LedgerIndex, remaining
    q1, q2 = PLAN
    plan = BattlePlan(("q1", "q2"), (("a", "b"),), "j", "v")
    assert list(plan) == PLAN and len(plan) == 2
    work = list(remaining(plan, LedgerIndex(), max_attempts=2))
    assert [(w.instruction_id, len(w.games), w.to_answer) for w in work] == [("q1", 2, ["a", "b"]),
                                                                             ("q2", 2, ["a", "b"])]
    gens = [Generation("q1", "a", "x", 1, 1, 0.0, "stop"), Generation("q1", "b", "y", 1, 1, 0.0, "stop"),
            Generation("q2", "b", "", None, None, 0.0, "error", error="missing")]
    index = LedgerIndex.of(gens, [judg(q1, 0, 0, 8, 3), judg(q1, 1, 0), judg(q1, 1, 1)])
    work = list(remaining(plan, index, max_attempts=3))
    assert [(w.instruction_id, w.games, w.to_answer) for w in work] == [("q1", [Game(q1, 1, 2)], [])]
    assert not list(remaining(plan, index, max_attempts=2))  # q1's second game has used both attempts


def test_ledger_index_read_column_wise_equals_the_records(tmp_path):
    from arena_ray.arena.ledger import Ledger
    from arena_ray.arena.progress import LedgerIndex
    q1, q2 = PLAN
    gens = [Generation("q1", "a", "x", 1, 1, 0.0, "stop"),
            Generation("q2", "b", "", None, None, 0.0, "error", error="missing")]
    judgments = [judg(q1, 0, 0), judg(q1, 0, 1, 8, 3), judg(q2, 1, 0)]
    ledger = Ledger(tmp_path)
    ledger.append("generations", gens[:1])
    ledger.append("generations", gens[1:])
    ledger.append("judgments", judgments[:2])
    ledger.append("judgments", judgments[1:])  # a repeated row, as after a crash mid-consolidation
    assert ledger.index() == LedgerIndex.of(gens, judgments)
    assert ledger.index().game(q1.battle_id, 0) == (2, True) and ledger.index().game(q2.battle_id, 1) == (1, False)
    assert [g.model for g in ledger.generations_of({"q2"})] == ["b"] and ledger.generations_of(set()) == []
