"""`arena-ray report`: an arena run directory (made by the real scheduler, ledger and finalize with instant fake
engines) and a flywheel dir become one self-contained HTML page; headless Chromium renders it with every
figure present, no console errors, and a screenshot that is not blank."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from arena_ray.cli import main
from arena_ray.judging.card import JudgeItem, card
from arena_ray.records import Judgment
from arena_ray.workflows.report.collect import collect, judge_stats
from arena_ray.workflows.report.html import write_report
from tests.helpers import fake_arena_run

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def arena_run(tmp_path_factory) -> Path:
    from arena_ray.arena.results import finalize
    from arena_ray.records import Instruction
    from arena_ray.settings import from_dict
    from arena_ray.testing.fakes import LengthJudge

    run = tmp_path_factory.mktemp("report") / "arena"
    run.mkdir()
    models = {"short": 1, "mid": 2, "long": 3}
    plan, stats = fake_arena_run(run, [Instruction(f"q{i}", f"Explain idea {i} in a few words.", "t") for i in range(6)],
                                 models, LengthJudge(), template="pairwise-v1")
    config = from_dict({"run_dir": str(run), "models": {m: {"engine": "replay", "path": "x"} for m in models} |
                        {"judge": {"engine": "openai", "openai": {"model": "j"}}},
                        "arena": {"competitors": list(models)}, "judge": {"model": "judge"},
                        "rating": {"bootstrap_rounds": 20}})
    # The judge's card as an arena run stores it (measured by arena/judge_eval.py): a judge that always
    # prefers the first-shown answer, on 20 human-labelled pairs.
    items = [JudgeItem(str(i), "ab"[i % 2], "tie", "a", "b", 5.0, 5.0) for i in range(20)]
    (run / "judge_card.json").write_text(json.dumps({"judge": "judge", "data": ["mine.jsonl"], **card(items)}))
    finalize(config, run, plan, stats)
    return run


@pytest.fixture(scope="module")
def flywheel_dir(arena_run, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fw") / "fw"
    for version in ("long@0", "long@1"):
        shutil.copytree(arena_run, root / "eval" / version)
    (root / "registry.jsonl").write_text("")
    (root / "iter1-sft" / "model").mkdir(parents=True)
    (root / "iter1-sft" / "model" / "training_log.json").write_text(json.dumps(
        [{"step": s, "loss": 2.0 / s} for s in range(1, 6)] + [{"step": 5, "train_runtime": 3.0}]))
    rows = [{"iteration": 0, "version": "long@0", "stages": [], "rating": 1010.0, "ci": [990.0, 1030.0],
             "win_rate": {"short": 1.0}},
            {"iteration": 1, "version": "long@1", "stages": [{"method": "sft", "battles": 6, "sft": 2, "dpo": 3,
                                                              "rm": 4, "loss_first": 2.0, "loss_last": 0.4}],
             "rating": 1040.0, "ci": [1000.0, None], "win_rate": {"short": 1.0},  # an open end: unbounded
             "head_to_head": {"wins": 4, "ties": 1, "losses": 1, "battles": 6, "win_rate": 0.75, "ci": [0.42, 1.0]},
             "lc_win_rate": 0.61, "raw_win_rate": 0.67, "mean_length": 812.0, "judge_score": 7.25}]
    (root / "summary.json").write_text(json.dumps({"iterations": rows}))
    return root


def test_judge_statistics():
    def j(pos, a, b, ok=True):
        return Judgment("b", "q", "x", "y", pos, 0, a, b, None, None, "", "", "judge", "v1", ok)
    stats = judge_stats([j(0, 8, 2), j(1, 2, 8), j(1, 8, 2), j(0, 5, 5), j(0, None, None, ok=False)],
                        {"position_disagreement_rate": 0.25})
    # position 0 shows model_a first: games 1 and 2 were won by the first-shown answer, game 3 was not.
    assert (stats.games, stats.parse_failures, stats.decisive_games, stats.first_position_wins) == (5, 1, 3, 2)
    assert stats.position_disagreement_rate == 0.25


def test_arena_report_content(arena_run):
    data = collect(arena_run)
    (view,) = data.arenas
    assert [r["model"] for r in view.leaderboard] == ["long", "mid", "short"]  # the fake judge prefers length
    assert view.win_rates[0][2] == 1.0 and view.judge.games == 36 and view.judge.parse_failures == 0
    page = write_report(arena_run).read_text()
    assert page.count("<svg") == 2 and "Judge position bias" in page and "<script" not in page
    assert "Boards by" not in page
    assert "Judge card: judge" in page and "position consistency on human pairs</td><td>0.0%" in page
    assert "Warning: this ranking is not reliable: the judge changes its verdict with the order" in page
    board = (arena_run / "leaderboard.md").read_text()
    assert "position consistency on this run's battles: 1.00" in board and "**Warning: this ranking" in board
    assert "<h3>Battles (all 18)</h3>" in page and page.count("<details class='battle") == 18
    assert "long vs mid" in page and "Judge, long shown first:" in page


def test_battle_browser_rows_carry_answers_and_both_explanations(arena_run):
    (view,) = collect(arena_run).arenas
    first = view.battles[0]
    assert (first["question_id"], first["model_a"], first["model_b"]) == ("q0", "long", "mid")
    assert first["text_a"].count("Explain idea 0") == 3 and first["text_b"].count("Explain idea 0") == 2
    assert "longer answer" in first["explanation_ab"] and "longer answer" in first["explanation_ba"]
    assert first["prompt"] == "Explain idea 0 in a few words." and first["winner"] == "model_a"


def test_boards_per_category_are_in_the_report(arena_run, tmp_path):
    import shutil

    from arena_ray.data.battles import read_run_dir
    from arena_ray.rating.categories import write_category_boards

    run = tmp_path / "run"
    shutil.copytree(arena_run, run)
    write_category_boards(read_run_dir(run).battles, ["prompt_length"], run, bootstrap_rounds=0, seed=0)
    page = write_report(run).read_text()
    assert "Boards by prompt_length" in page and "by-prompt-length/short" in page


def test_flywheel_report_cli(flywheel_dir, capsys):
    assert main(["report", str(flywheel_dir), "--out", str(flywheel_dir / "r.html")]) == 0
    page = (flywheel_dir / "r.html").read_text()
    assert page.count("<svg") == 3 + 2 * 2  # ratings per iteration, data volume, curves; 2 per eval arena
    assert "Training curves" in page and "long@1" in page


def test_iteration_table_shows_the_win_rates_and_length(flywheel_dir, tmp_path):
    page = write_report(flywheel_dir, tmp_path / "r.html").read_text()
    assert "vs the start (95% CI) W/T/L" in page and "<td>0.75 (0.42–1.00) 4/1/1</td>" in page
    assert "<td>0.61</td><td>0.67</td><td>812</td><td>7.25</td>" in page and "1040 (1000–∞)" in page


def test_a_self_rewarding_dir_reports_its_iterations(arena_run, tmp_path):
    root = tmp_path / "sr"
    shutil.copytree(arena_run, root / "eval" / "m@0")
    shutil.copytree(arena_run, root / "iter1" / "arena")
    (root / "registry.jsonl").write_text("")
    measures = {"head_to_head": {"wins": 1, "ties": 0, "losses": 1, "battles": 2, "win_rate": 0.5, "ci": [0.0, 1.0]},
                "lc_win_rate": 0.4, "raw_win_rate": 0.5, "mean_length": 120.0, "judge_score": 6.5}
    summary = {"m0": "m@0", "length_hacking": None,
               "baseline": {"lc_win_rate": 0.3, "raw_win_rate": 0.25, "mean_length": 100.0,
                            "ratings": {"m@0": {"rating": 990.0, "ci": [950.0, 1030.0]}}},
               "iterations": [{"iteration": 1, "from": "m@0", "to": "m@1", "pairs_kept": 3,
                               "dpo": {"skipped": None, "loss_first": 0.69, "loss_last": 0.5},
                               "arena": {"win_rate": 0.5, "ratings": {"m@1": {"rating": 1010.0, "ci": [970.0, 1050.0]}},
                                         **measures}}]}
    (root / "summary.json").write_text(json.dumps(summary))
    data = collect(root)
    assert data.title == "Self-rewarding sr" and [a.name for a in data.arenas] == ["eval of m@0", "eval of iter1"]
    assert [(r["version"], r["rating"], r["lc_win_rate"]) for r in data.flywheel.rows] == \
        [("m@0", 990.0, 0.3), ("m@1", 1010.0, 0.4)]
    page = write_report(root).read_text()
    assert "<td>m@1</td><td>dpo</td><td>1010 (970–1050)</td><td>0.50 (0.00–1.00) 1/0/1</td><td>0.40</td>" in page


def test_not_a_run_dir_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 3
    assert "neither an arena run" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium not installed (.ci/run installs it)")
def test_renders_in_headless_chromium(flywheel_dir, tmp_path):
    from PIL import Image
    from playwright.sync_api import sync_playwright

    page_path = write_report(flywheel_dir, tmp_path / "report.html")
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(page_path.as_uri())
        figures = page.locator("figure.plot svg")
        assert figures.count() == 7
        battles = page.locator("details.battle")
        assert battles.count() == 2 * 18 and all(battles.nth(i).is_visible() for i in range(0, 36, 7))
        page.locator("label[for='a0-p2']").click()  # the first eval arena: one model pair only
        visible = [i for i in range(36) if battles.nth(i).is_visible()]
        assert len(visible) == 6 + 18 and all("p2" in battles.nth(i).get_attribute("class") for i in visible[:6])
        page.locator("label[for='a0-q1']").click()  # and one instruction: that pair's battle on it
        assert sum(battles.nth(i).is_visible() for i in range(18)) == 1
        battles.nth(visible[0]).locator("summary").click()
        assert battles.nth(visible[0]).locator("pre").first.is_visible()  # both answers, side by side
        page.locator("label[for='a0-p0']").click()
        page.locator("label[for='a0-q0']").click()
        sizes = [figures.nth(i).bounding_box() for i in range(figures.count())]
        assert all(box and box["width"] > 200 and box["height"] > 100 for box in sizes)
        page.screenshot(path=str(tmp_path / "shot.png"), full_page=True)
        browser.close()
    assert errors == []
    image = Image.open(tmp_path / "shot.png").convert("L")
    low, high = image.getextrema()
    assert high - low > 100 and len(set(image.resize((64, 64)).getdata())) > 20  # drawn, not blank


def test_rate_on_a_run_directory_carries_its_judge_card(arena_run, tmp_path, capsys):
    assert main(["rate", "--battles", str(arena_run), "--out", str(tmp_path), "--bootstrap", "10"]) == 0
    out = capsys.readouterr().out
    assert "## Judge: judge" in out and "Warning: this ranking is not reliable" in out
    board = json.loads((tmp_path / "leaderboard.json").read_text())
    assert board["judge"] == json.loads((arena_run / "leaderboard.json").read_text())["judge"]
    assert board["judge"]["reliable"] is False
