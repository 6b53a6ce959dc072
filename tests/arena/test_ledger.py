import pytest

from arena_ray.arena.ledger import Ledger
from arena_ray.errors import InputError
from arena_ray.records import Generation, Judgment


def gen(iid, model, text="t"):
    return Generation(iid, model, text, 3, 5, 0.1, "stop")


def judg(bid, pos, attempt, ok=True):
    return Judgment(bid, "q", "a", "b", pos, attempt, 7.0 if ok else None, 5.0 if ok else None, None, None,
                    "e", "raw", "j", "v1", ok)


def test_append_read_consolidate_round_trip(tmp_path):
    ledger = Ledger(tmp_path)
    ledger.append_generations([gen("q1", "a"), gen("q1", "b")])
    ledger.append_generations([gen("q2", "a")])
    ledger.append_judgments([judg("b1", 0, 0, ok=False), judg("b1", 0, 1), judg("b1", 1, 0)])
    assert len(ledger.generations()) == 3 and len(ledger.judgments()) == 3
    ledger.consolidate()
    assert (tmp_path / "generations.parquet").exists() and (tmp_path / "judgments.parquet").exists()
    assert not list((tmp_path / "ledger" / "generations").glob("part-*"))
    again = Ledger(tmp_path)
    assert sorted((g.instruction_id, g.model) for g in again.generations()) == [("q1", "a"), ("q1", "b"), ("q2", "a")]
    assert [j.parse_ok for j in again.judgments()] == [False, True, True]


def test_repeated_keys_are_read_once(tmp_path):
    """A crash between consolidation and part removal leaves rows in both: they must count once."""
    ledger = Ledger(tmp_path)
    ledger.append_generations([gen("q1", "a", "first")])
    ledger.consolidate()
    ledger.append_generations([gen("q1", "a", "second"), gen("q2", "a")])
    rows = ledger.generations()
    assert len(rows) == 2
    assert [g.text for g in rows if g.instruction_id == "q1"] == ["first"]


def test_more_appends_after_consolidation(tmp_path):
    ledger = Ledger(tmp_path)
    ledger.append_judgments([judg("b1", 0, 0)])
    ledger.consolidate()
    ledger.append_judgments([judg("b1", 1, 0)])
    ledger.consolidate()
    assert {(j.battle_id, j.position) for j in Ledger(tmp_path).judgments()} == {("b1", 0), ("b1", 1)}


def test_corrupt_part_names_the_file_and_deletes_nothing(tmp_path):
    ledger = Ledger(tmp_path)
    ledger.append_generations([gen("q1", "a")])
    good = ledger.append("generations", [gen("q2", "a")])
    bad = tmp_path / "ledger" / "generations" / "part-99999999999999999999-bad.parquet"
    bad.write_bytes(good.read_bytes()[:40])  # a truncated Parquet file
    with pytest.raises(InputError, match="part-99999999999999999999-bad.parquet"):
        ledger.generations()
    with pytest.raises(InputError):
        ledger.consolidate()
    assert good.exists() and bad.exists()
    bad.unlink()
    assert len(ledger.generations()) == 2


def test_leftover_temp_files_are_ignored(tmp_path):
    ledger = Ledger(tmp_path)
    ledger.append_generations([gen("q1", "a")])
    (tmp_path / "ledger" / "generations" / "part-1.parquet.abc.tmp").write_bytes(b"half")
    assert len(ledger.generations()) == 1
    ledger.consolidate()
    assert not list((tmp_path / "ledger").glob("*/*.tmp"))


def test_instructions_are_kept_across_resumes(tmp_path):
    from arena_ray.arena.ledger import load_instructions_of, save_instructions
    from arena_ray.records import Instruction
    save_instructions(tmp_path, [Instruction("q1", "one", "s"), Instruction("q2", "two", "s")])
    save_instructions(tmp_path, [Instruction("q2", "two", "s"), Instruction("q3", "three", "s")])
    assert sorted(load_instructions_of(tmp_path)) == ["q1", "q2", "q3"]
    with pytest.raises(InputError, match="not an arena run directory"):
        load_instructions_of(tmp_path / "elsewhere")


def test_instructions_of_a_run_from_before_multi_turn_battles_still_read(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from arena_ray.arena.ledger import load_instructions_of, save_instructions
    from arena_ray.records import Instruction

    pq.write_table(pa.table({"instruction_id": ["q1"], "text": ["hi"], "source": ["s"], "category": [""]}),
                   tmp_path / "instructions.parquet")          # the four columns of an earlier release
    assert load_instructions_of(tmp_path) == {"q1": Instruction("q1", "hi", "s")}
    save_instructions(tmp_path, [Instruction("q2", "a", "s", "", ("b",), ("r1", ""))])   # adding rewrites it
    got = load_instructions_of(tmp_path)
    assert got["q1"].turns == () and got["q2"].user_turns == ("a", "b") and got["q2"].references == ("r1", "")
