"""battles.jsonl in FastChat's battle format, checked with FastChat's own code: `report_elo_analysis_results` from
the fschat 0.2.36 wheel's `fastchat/serve/monitor/elo_analysis.py` (downloaded by scripts/setup.sh) loads a run's
battles and ranks the models as our board does. The run is made by the real scheduler, ledger and finalize with
instant fake engines."""
from __future__ import annotations

import ast
import gzip
import hashlib
import json
import zipfile
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from arena_ray.arena.ledger import Ledger
from arena_ray.arena.results import finalize
from arena_ray.cli import main
from arena_ray.records import Completion, Instruction
from arena_ray.settings import from_dict
from arena_ray.testing.fakes import LengthJudge
from tests.helpers import fake_arena_run

WHEELS = Path(__file__).resolve().parents[2] / ".cache" / "wheels"
FSCHAT = "0.2.36"


def fastchat_source(member: str) -> str:
    wheels = sorted(WHEELS.glob(f"fschat-{FSCHAT}-*.whl"))
    assert wheels, f"fschat {FSCHAT}'s wheel is missing from {WHEELS}: run scripts/setup.sh"
    with zipfile.ZipFile(wheels[0]) as wheel:
        return wheel.read(member).decode()


class _Figure:
    """Stands in for plotly (not installed here): FastChat's figures are drawn from the tables we check."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: self


def fastchat_elo_analysis() -> dict:
    """elo_analysis.py's functions, its own imports of fastchat modules, plotly and pytz replaced by the pure
    model registry (exec'd from the same wheel), a figure stub and zoneinfo."""
    registry: dict = {}
    exec(fastchat_source("fastchat/model/model_registry.py"), registry)
    tree = ast.parse(fastchat_source("fastchat/serve/monitor/elo_analysis.py"))
    body = [n for n in tree.body if not (isinstance(n, ast.If) and "__main__" in ast.unparse(n.test))
            and not (isinstance(n, (ast.Import, ast.ImportFrom)) and any(s in ast.unparse(n) for s in
                                                                         ("fastchat", "plotly", "pytz")))]
    scope = {"get_model_info": registry["get_model_info"], "px": _Figure(), "timezone": ZoneInfo}
    exec(compile(ast.Module(body=body, type_ignores=[]), "elo_analysis.py", "exec"), scope)
    return scope


class NoisyLengthJudge(LengthJudge):
    """Prefers the longer answer, except in a fixed third of games (by a hash of the request id: battle, order,
    attempt; the prompt itself carries a random nonce): a ranking with finite ratings and no separated model."""

    async def generate(self, request):
        c = await super().generate(request)
        if int(hashlib.sha256(request.request_id.encode()).hexdigest(), 16) % 3:
            return c
        s1, s2 = c.text.split("\n")[0].split()
        return Completion(f"{s2} {s1}\nThe other one.", c.prompt_tokens, c.completion_tokens, "stop", 0.0)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("fastchat") / "arena"
    instructions = [Instruction(f"q{i}", f"Name {i} things about topic {i * 7}.", "t") for i in range(12)]
    models = {"one": 1, "two": 2, "three": 3, "four": 4}
    plan, stats = fake_arena_run(run, instructions, models, NoisyLengthJudge())
    config = from_dict({"run_dir": str(run), "models": {m: {"engine": "replay", "path": "x"} for m in models} |
                        {"judge": {"engine": "openai", "openai": {"model": "j"}}},
                        "arena": {"competitors": list(models)}, "judge": {"model": "judge", "card": False},
                        "rating": {"bootstrap_rounds": 50}})
    finalize(config, run, plan, stats)
    return run


def our_order(run: Path) -> list[str]:
    models = json.loads((run / "leaderboard.json").read_text())["models"]
    assert all(m["rating"] is not None for m in models.values())
    return sorted(models, key=lambda m: -models[m]["rating"])


def test_fastchat_elo_analysis_reads_our_battles_and_ranks_as_we_do(run):
    battles = [json.loads(line) for line in (run / "battles.jsonl").read_text().splitlines()]
    results = fastchat_elo_analysis()["report_elo_analysis_results"](battles, rating_system="bt", num_bootstrap=20)
    assert list(results["elo_rating_final"].index) == our_order(run)
    assert set(results["elo_rating_online"]) == set(our_order(run))
    assert set(results["bootstrap_df"].columns) == set(our_order(run)) and len(results["bootstrap_df"]) == 20


def test_battle_records_carry_fastchats_fields(run):
    battles = [json.loads(line) for line in (run / "battles.jsonl").read_text().splitlines()]
    assert len(battles) == 6 * 12
    assert all(b["anony"] is True and b["turn"] == 1 and b["judge"] == "judge" and b["language"] == "en"
               for b in battles)
    stamps = [b["tstamp"] for b in battles]
    assert stamps == sorted(stamps) and stamps[0] > 1.7e9  # the verdicts' own times, oldest first
    gens = {(g.instruction_id, g.model): g.text for g in Ledger(run).generations()}
    for b in battles:
        for side, model in (("conversation_a", b["model_a"]), ("conversation_b", b["model_b"])):
            user, answer = b[side]
            assert user == {"role": "user", "content": f"Name {b['question_id'][1:]} things about topic "
                                                       f"{int(b['question_id'][1:]) * 7}."}
            assert answer == {"role": "assistant", "content": gens[(b["question_id"], model)]}


def test_rate_reads_fastchat_arrays_and_gzip_as_jsonl(run, tmp_path, capsys):
    lines = (run / "battles.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    files = {"array.json": json.dumps(records).encode(), "lines.jsonl.gz": gzip.compress("\n".join(lines).encode()),
             "array.json.gz": gzip.compress(json.dumps(records, indent=1).encode())}
    boards = []
    for name, data in [("lines.jsonl", "\n".join(lines).encode()), *files.items()]:
        (tmp_path / name).write_bytes(data)
        assert main(["rate", "--battles", str(tmp_path / name), "--out", str(tmp_path / f"out-{name}"),
                     "--bootstrap", "20"]) == 0
        board = json.loads((tmp_path / f"out-{name}" / "leaderboard.json").read_text())["models"]
        boards.append({m: v["rating"] for m, v in board.items()})
    assert all(b == boards[0] for b in boards[1:]) and sorted(boards[0], key=lambda m: -boards[0][m]) == our_order(run)


@pytest.mark.parametrize("data, needle", [
    (b"\x1f\x8b\x08garbage", "unreadable"),
    (gzip.compress(b"\xff\xfe{}"), "not UTF-8 text"),
    (b'[{"model_a": "x", "model_b": "y", "winner": "model_a"},', "not valid JSON"),
    (b'{"battles": []}\n', "field 'model_a' missing"),
    (b'[{"model_a": "x", "model_b": "y", "winner": "model_a"}, 3]', r"b\.json\[1\]: expected a JSON object"),
])
def test_bad_battle_files_are_named(tmp_path, capsys, data, needle):
    path = tmp_path / "b.json"
    path.write_bytes(data)
    assert main(["rate", "--battles", str(path), "--out", str(tmp_path / "out")]) != 0
    err = capsys.readouterr().err
    assert "b.json" in err and __import__("re").search(needle, err) and "Traceback" not in err


def test_multi_turn_conversations_interleave_every_turn():
    from arena_ray.arena.results import conversations_of
    from arena_ray.data.battles import fastchat_record
    from arena_ray.records import Battle, Generation

    inst = Instruction("mt1", "First question?", "mt_bench", turns=("Second question?",))
    gens = [Generation("mt1#turn1", "a", "a says 1", 1, 1, 0.0, "stop"), Generation("mt1", "a", "a says 2", 1, 1, 0.0,
                                                                                    "stop"),
            Generation("mt1#turn1", "b", "b says 1", 1, 1, 0.0, "stop"),
            Generation("mt1", "b", "", 1, 0, 0.0, "error", error="no answer")]   # b never finished
    answers = conversations_of({"mt1": inst}, gens)
    assert answers == {"mt1": {"a": ("a says 1", "a says 2")}}
    battle = Battle("x", "mt1", "a", "c", "model_a", 8, 2, True, "j", "v", tstamp=5.0)
    record = fastchat_record(battle, inst, {**answers["mt1"], "c": ("c says 1", "c says 2")})
    assert record["turn"] == 2 and record["tstamp"] == 5.0
    assert [m["content"] for m in record["conversation_a"]] == ["First question?", "a says 1", "Second question?",
                                                                 "a says 2"]
    assert "conversation_a" not in fastchat_record(battle, inst, answers["mt1"])  # c has no answers: none written
