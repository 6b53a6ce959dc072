"""`arena-ray rate`, `import-reviews` and `consistency` on the real files in ../shared/data."""
import json

import pytest

from arena_ray.cli import main
from tests.data.test_ingest import DATA, needs_data

pytestmark = needs_data


def test_rate_writes_the_contract_files(tmp_path, capsys):
    out = tmp_path / "ah"
    assert main(["rate", "--battles", str(DATA / "battles/arena_hard_battles.jsonl"), "--out", str(out),
                 "--bootstrap", "50", "--anchor", "claude-3-haiku-20240307:1000"]) == 0
    board = json.loads((out / "leaderboard.json").read_text())
    models = board["models"]
    assert models["claude-3-haiku-20240307"]["rating"] == pytest.approx(1000.0)
    assert models["gpt-4o"]["rating"] > models["claude-3-opus-20240229"]["rating"] > 1000
    assert all(m["ci_low"] <= m["rating"] <= m["ci_high"] for m in models.values())
    assert sum(m["battles"] for m in models.values()) == 2 * 1348
    assert set(board["online_elo"]) == set(models) and len(board["win_rates"]["observed"]) == 4
    assert "| gpt-4o |" in capsys.readouterr().out
    csv_lines = (out / "leaderboard.csv").read_text().splitlines()
    assert csv_lines[0] == "model,rating,ci_low,ci_high,rank_ub,battles" and len(csv_lines) == 5
    assert csv_lines[1].startswith(next(iter(models)) + ",")   # best first, as in the JSON
    for line in csv_lines[1:]:
        name, rating, low, high, rank_ub, battles = line.split(",")
        entry = models[name]
        assert (float(rating), float(low), float(high), int(rank_ub), int(battles)) == (
            entry["rating"], entry["ci_low"], entry["ci_high"], entry["rank_ub"], entry["battles"])


def test_style_control_on_chatbot_arena_sample(tmp_path):
    out = tmp_path / "ca"
    assert main(["rate", "--battles", str(DATA / "battles/chatbot_arena_sample.jsonl"), "--out", str(out),
                 "--bootstrap", "20", "--style-control"]) == 0
    board = json.loads((out / "leaderboard.json").read_text())
    assert set(board["style_control"]["models"]) == set(board["models"])
    assert set(board["style_control"]["coefficients"]) == {"length", "headers", "list_items", "bold"}
    assert "Style-controlled" in (out / "leaderboard.md").read_text()


def test_style_control_needs_texts(tmp_path, capsys):
    assert main(["rate", "--battles", str(DATA / "battles/arena_hard_battles.jsonl"), "--out", str(tmp_path),
                 "--style-control"]) == 3
    assert "style control needs both answers' texts" in capsys.readouterr().err


def test_disconnected_graph_is_reported(tmp_path):
    f = tmp_path / "b.jsonl"
    f.write_text("\n".join(json.dumps({"model_a": a, "model_b": b, "winner": "model_a"})
                           for a, b in [("a", "b"), ("b", "a"), ("c", "d"), ("d", "c")]) + "\n")
    assert main(["rate", "--battles", str(f), "--out", str(tmp_path / "o"), "--bootstrap", "10"]) == 0
    assert json.loads((tmp_path / "o/leaderboard.json").read_text())["components"] == [["a", "b"], ["c", "d"]]


def test_reviews_to_consistency(tmp_path, capsys):
    battles = tmp_path / "vicuna.jsonl"
    assert main(["import-reviews", "--reviews", str(DATA / "battles/vicuna_bench_2023_reviews"),
                 "--answers", str(DATA / "answers/vicuna_bench_2023"), "--out", str(battles)]) == 0
    assert main(["rate", "--battles", str(battles), "--out", str(tmp_path / "v"), "--bootstrap", "30"]) == 0
    # a board compared with itself agrees perfectly
    assert main(["consistency", "--ours", str(tmp_path / "v"), "--reference", str(tmp_path / "v/leaderboard.json"),
                 "--out", str(tmp_path / "c.json")]) == 0
    result = json.loads((tmp_path / "c.json").read_text())
    assert result["spearman"] == pytest.approx(1.0) and result["agreement"] == pytest.approx(1.0)


def test_consistency_against_arena_hard_csv_with_name_map(tmp_path):
    assert main(["rate", "--battles", str(DATA / "battles/arena_hard_battles.jsonl"), "--out", str(tmp_path / "o"),
                 "--bootstrap", "30"]) == 0
    names = tmp_path / "names.json"
    names.write_text(json.dumps({"gpt-4o": "gpt-4o-2024-05-13"}))
    assert main(["consistency", "--ours", str(tmp_path / "o"), "--names", str(names), "--out", str(tmp_path / "c.json"),
                 "--reference", str(DATA / "leaderboards/arena_hard_v0.1_2024-07-31.csv")]) == 0
    result = json.loads((tmp_path / "c.json").read_text())
    assert result["models"] == 4 and result["unmatched_ours"] == []
    assert result["spearman"] == pytest.approx(0.8)  # ours swaps the two close leaders vs the reference


def test_boards_per_category(tmp_path):
    source = DATA / "battles/chatbot_arena_sample.jsonl"
    assert main(["rate", "--battles", str(source), "--out", str(tmp_path), "--bootstrap", "20",
                 "--by", "language", "--by", "prompt_length", "--by", "coding"]) == 0
    summary = json.loads((tmp_path / "categories.json").read_text())
    rows = [json.loads(line) for line in source.read_text().splitlines()]
    languages = {}
    for r in rows:
        languages[r["language"]] = languages.get(r["language"], 0) + 1
    assert {v["value"]: v["battles"] for v in summary["language"]["values"]} == languages
    english = next(v for v in summary["language"]["values"] if v["value"] == "English")
    board = json.loads((tmp_path / english["board"] / "leaderboard.json").read_text())
    assert sum(m["battles"] for m in board["models"].values()) == 2 * languages["English"]
    assert board["category"] == {"field": "language", "value": "English"}
    assert (tmp_path / english["board"] / "leaderboard.csv").exists()
    assert sum(v["battles"] for v in summary["prompt_length"]["values"]) == len(rows)
    code = {v["value"]: v["battles"] for v in summary["coding"]["values"]}
    assert code.get("code", 0) == sum(1 for r in rows if r["is_code"])   # FastChat's own is_code flag
    assert "| English |" in (tmp_path / "categories.md").read_text()


def test_a_field_nobody_has_is_a_clear_error(tmp_path, capsys):
    assert main(["rate", "--battles", str(DATA / "battles/arena_hard_battles.jsonl"), "--out", str(tmp_path),
                 "--bootstrap", "0", "--by", "nonsense"]) == 3
    assert "no battle has a 'nonsense' field" in capsys.readouterr().err


@pytest.mark.parametrize("battles,reference,names", [
    ("arena_hard_battles.jsonl", "lmarena_text_2025-08-06.csv", "lmarena.json"),
    ("arena_hard_battles.jsonl", "arena_hard_v0.1_2024-07-31.csv", "arena_hard.json"),
    ("vicuna", "lmarena_text_2025-08-06.csv", "lmarena.json")])
def test_shipped_name_maps_match_every_model_on_both_boards(tmp_path, capsys, battles, reference, names):
    """Every model of our board is matched on the reference board, or listed as absent from it (null)."""
    from tests.conftest import ROOT

    source = DATA / "battles" / battles
    if battles == "vicuna":
        source = tmp_path / "vicuna.jsonl"
        assert main(["import-reviews", "--reviews", str(DATA / "battles/vicuna_bench_2023_reviews"),
                     "--answers", str(DATA / "answers/vicuna_bench_2023"), "--out", str(source)]) == 0
    assert main(["rate", "--battles", str(source), "--out", str(tmp_path / "b"), "--bootstrap", "0"]) == 0
    capsys.readouterr()
    names_file = ROOT / "configs" / "names" / names
    assert main(["consistency", "--ours", str(tmp_path / "b"), "--reference", str(DATA / "leaderboards" / reference),
                 "--names", str(names_file)]) == 0
    result = json.loads(capsys.readouterr().out)
    absent = {k for k, v in json.loads(names_file.read_text()).items() if v is None}
    assert set(result["unmatched_ours"]) <= absent and result["models"] >= 4


def test_a_name_collision_is_an_error(tmp_path, capsys):
    names = tmp_path / "n.json"
    names.write_text(json.dumps({"gpt-4o": "x", "claude-3-opus-20240229": "x"}))
    assert main(["rate", "--battles", str(DATA / "battles/arena_hard_battles.jsonl"), "--out", str(tmp_path / "b"),
                 "--bootstrap", "0"]) == 0
    assert main(["consistency", "--ours", str(tmp_path / "b"), "--reference", str(tmp_path / "b"),
                 "--names", str(names)]) == 3
    assert "'gpt-4o' and 'claude-3-opus-20240229' both become 'x'" in capsys.readouterr().err
