"""A real local Ray cluster, real Serve applications, a real vLLM engine (tiny random model)."""
from __future__ import annotations

import json
import urllib.request

import psutil
import pyarrow.parquet as pq
import pytest

from arena_ray.serving.deployments import served
from arena_ray.settings import from_dict
from arena_ray.workflows.arena import run_arena
from tests.helpers import ANSWERS, tiny_config_dict

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def partial_answers(tmp_path_factory):
    """gpt-4 answers for the first instruction only: the second one's battles must fail, visibly."""
    path = tmp_path_factory.mktemp("answers") / "partial.jsonl"
    first = (ANSWERS / "gpt-4-0314.jsonl").read_text().splitlines()
    from arena_ray.data.ingest import load_instructions
    from tests.helpers import ARENA_HARD
    wanted = load_instructions(ARENA_HARD, limit=1)[0].instruction_id
    path.write_text("\n".join(line for line in first if json.loads(line)["uid"] == wanted) + "\n")
    return path


@pytest.fixture(scope="module")
def arena_run(local_ray, tmp_path_factory, tiny_model_dir, partial_answers):
    run_dir = tmp_path_factory.mktemp("arena") / "run"
    data = tiny_config_dict(run_dir, tiny_model_dir, limit=2,
                            extra_models={"partial": {"engine": "replay", "path": str(partial_answers),
                                                      "num_cpus": 0.1}})
    config = from_dict(data)
    return config, run_arena(config, show_progress=False)


def test_run_directory_contract(arena_run):
    config, result = arena_run
    run = result.run_dir
    gens = pq.read_table(run / "generations.parquet").to_pylist()
    assert {"instruction_id", "model", "text", "prompt_tokens", "completion_tokens", "latency_s"} <= set(gens[0])
    assert len(gens) == 2 * 4  # every competitor answered every instruction exactly once
    assert len({(g["instruction_id"], g["model"]) for g in gens}) == 8
    tiny = [g for g in gens if g["model"] == "tiny"]
    assert all(g["completion_tokens"] and g["completion_tokens"] <= 16 for g in tiny)

    games = pq.read_table(run / "judgments.parquet").to_pylist()
    assert {"battle_id", "instruction_id", "model_a", "model_b", "position", "score_a", "score_b", "explanation",
            "raw", "judge", "prompt_version", "parse_ok"} <= set(games[0])
    ok = [g for g in games if g["parse_ok"]]
    # 6 pairs x 2 instructions, minus the 3 battles of 'partial' without an answer, two games each
    assert len(ok) == 2 * 9 and {g["position"] for g in ok} == {0, 1}
    assert all(1 <= g["score_a"] <= 10 and 1 <= g["score_b"] <= 10 for g in ok)  # constrained format parses

    battles = [json.loads(line) for line in (run / "battles.jsonl").read_text().splitlines()]
    assert len(battles) == 9 and len({b["battle_id"] for b in battles}) == 9
    assert all(b["winner"] in ("model_a", "model_b", "tie") and {"question_id", "score_a", "score_b"} <= set(b)
               for b in battles)

    board = json.loads((run / "leaderboard.json").read_text())
    assert set(board["models"]) == {"tiny", "gpt-4-0314", "gpt-3.5-turbo-0125", "partial"}
    for entry in board["models"].values():  # on 9 battles a bootstrap may leave an interval open (None = ±inf)
        if entry.get("separated"):
            assert entry["rating"] is None and entry["ci_low"] is None and entry["ci_high"] is None
            continue
        low = -float("inf") if entry["ci_low"] is None else entry["ci_low"]
        high = float("inf") if entry["ci_high"] is None else entry["ci_high"]
        assert low <= entry["rating"] <= high
    assert sum(e["battles"] for e in board["models"].values()) == 2 * 9
    assert board["failed_games"]["partial"] == 3 and board["summary"]["failed_battles"] == 3
    assert "| rank (UB) | rank 95% | model |" in (run / "leaderboard.md").read_text()
    prompts = pq.read_table(run / "instructions.parquet").to_pylist()
    assert {p["instruction_id"] for p in prompts} == {g["instruction_id"] for g in gens} and prompts[0]["text"]


def test_throughput_is_measured(arena_run):
    _, result = arena_run
    meters = result.stats["meters"]
    assert meters["tiny"]["requests"] == 2 and meters["tiny"]["tokens_per_s"] > 0
    assert meters["judge"]["requests"] >= 18 and meters["judge"]["tokens_per_s"] > 0
    assert meters["judge"]["capacity"] == 8


def test_rerun_resumes_without_new_requests(arena_run):
    config, first = arena_run
    again = run_arena(config, show_progress=False)
    assert again.stats["generations_total"] == 0 and again.stats["games_total"] == 0
    assert {b.battle_id for b in again.tally.battles} == {b.battle_id for b in first.tally.battles}


def test_http_endpoint_is_on_loopback(local_ray, tiny_model_dir, tmp_path):
    config = from_dict(tiny_config_dict(tmp_path / "run", tiny_model_dir))
    with served({"gpt-4-0314": config.models["gpt-4-0314"]}, config.serve):
        from arena_ray.data.ingest import load_instructions
        from tests.helpers import ARENA_HARD
        first = load_instructions(ARENA_HARD, limit=1)[0]
        body = json.dumps({"messages": [{"role": "user", "content": first.text}],
                           "instruction_id": first.instruction_id}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{local_ray.serve_port}/gpt-4-0314", body,
                                         {"Content-Type": "application/json"})
        answer = json.loads(urllib.request.urlopen(request, timeout=30).read())
        assert answer["model"] == "gpt-4-0314" and len(answer["text"]) > 100
        listeners = {c.laddr.ip for c in psutil.net_connections("inet") if c.status == "LISTEN"
                     and c.laddr.port == local_ray.serve_port}
        assert listeners == {"127.0.0.1"}


def test_the_openai_client_reaches_a_served_model(local_ray, tiny_model_dir, tmp_path):
    """The official `openai` client against a deployment on the embedded default: models, chat, completions,
    and a bad request answered as OpenAI errors are."""
    import openai

    from arena_ray.data.ingest import load_instructions
    from tests.helpers import ARENA_HARD

    config = from_dict(tiny_config_dict(tmp_path / "run", tiny_model_dir))
    first = load_instructions(ARENA_HARD, limit=1)[0]
    with served({"gpt-4-0314": config.models["gpt-4-0314"]}, config.serve):
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{local_ray.serve_port}/gpt-4-0314/v1", api_key="none")
        assert [m.id for m in client.models.list()] == ["gpt-4-0314"]
        chat = client.chat.completions.create(model="gpt-4-0314", messages=[{"role": "user", "content": first.text}],
                                              extra_body={"instruction_id": first.instruction_id})
        assert chat.model == "gpt-4-0314" and len(chat.choices[0].message.content) > 100
        text = client.completions.create(model="gpt-4-0314", prompt=first.text, max_tokens=64,
                                         extra_body={"instruction_id": first.instruction_id})
        assert text.choices[0].text == chat.choices[0].message.content  # recorded answers: the same text
        with pytest.raises(openai.BadRequestError, match="'stream' is not served"):
            client.chat.completions.create(model="gpt-4-0314", messages=[{"role": "user", "content": "x"}],
                                           stream=True)
