"""`arena-ray rate`: battles file or run directory → leaderboard.json / leaderboard.md (+ Elo, win rates,
style control); `import-reviews` and `consistency` beside it. Reads and writes files; the maths is in rating/."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional, Sequence

from arena_ray.data.battles import BattleFile, import_vicuna_reviews, read_battles
from arena_ray.data.ingest import read_json
from arena_ray.data.leaderboards import load_board, rename
from arena_ray.errors import InputError
from arena_ray.judging.card import board_lines
from arena_ray.rating import bradley_terry, leaderboard
from arena_ray.rating.categories import write_category_boards
from arena_ray.rating.consistency import compare
from arena_ray.rating.elo import online_elo
from arena_ray.rating.graph import components
from arena_ray.rating.matrix import observed_win_rates, predicted_win_rates
from arena_ray.rating.style import StyledBattle, fit_style_controlled, style_features
from arena_ray.records import Rating
from arena_ray.records.outputs import output_dir, output_file
from arena_ray.records.tables import json_text

log = logging.getLogger(__name__)


def styled(bf: BattleFile) -> list[StyledBattle]:
    missing = sum(1 for b in bf.battles if b.text_a is None or b.text_b is None)
    if missing:
        raise InputError(f"{bf.source}: style control needs both answers' texts; {missing} of "
                         f"{len(bf.battles)} battles lack them (FastChat conversation_a/b, or a run directory)")
    return [StyledBattle(b.model_a, b.model_b, b.winner, style_features(b.text_a, b.tokens_a),
                         style_features(b.text_b, b.tokens_b)) for b in bf.battles]


def rate_file(bf: BattleFile, out_dir: Path, *, bootstrap_rounds: int = 100, seed: int = 0,
              anchor: Optional[tuple[str, float]] = None, style_control: bool = False,
              by: Sequence[str] = (), judge: Optional[dict] = None) -> list[Rating]:
    """`judge`: the judge section of the run the battles come from (its card), carried onto the board."""
    triples = [b.triple() for b in bf.battles]
    groups = components((a, b) for a, b, _ in triples)
    if len(groups) > 1:  # documented treatment: rate anyway, report that cross-group gaps mean nothing
        log.warning("%s: the comparison graph has %d disconnected groups; ratings across groups are not "
                    "comparable: %s", bf.source, len(groups), groups)
    ratings = bradley_terry.fit(triples, bootstrap_rounds=bootstrap_rounds, seed=seed, anchor=anchor)
    names = [r.model for r in ratings]
    extra: dict = {
        "source": bf.source, "battle_count": len(triples), "self_battles_dropped": bf.self_battles_dropped,
        "components": groups if len(groups) > 1 else None,
        "online_elo": {m: round(v, 2) for m, v in sorted(online_elo(triples).items(), key=lambda kv: -kv[1])},
        "win_rates": {"models": names,
                      "observed": _rounded(observed_win_rates(triples, names)),
                      "predicted": _rounded(predicted_win_rates({r.model: r.rating if r.rating is not None else
                                                                 float("nan") for r in ratings}, names))},
    }
    if style_control:
        fit = fit_style_controlled(styled(bf), bootstrap_rounds=bootstrap_rounds, seed=seed, anchor=anchor)
        extra["style_control"] = {"models": leaderboard.to_json(fit.ratings)["models"],
                                  "coefficients": {k: round(v, 4) for k, v in fit.coefficients.items()}}
    if judge:
        extra["judge"] = judge
    out_dir.mkdir(parents=True, exist_ok=True)
    leaderboard.write(out_dir, ratings, {}, extra)
    if judge:
        with (out_dir / "leaderboard.md").open("a") as fh:
            fh.write(board_lines(judge))
    if style_control:
        with (out_dir / "leaderboard.md").open("a") as fh:
            fh.write("\n" + leaderboard.to_markdown(fit.ratings, title="Style-controlled"))
    if by:
        write_category_boards(bf.battles, by, out_dir, bootstrap_rounds=bootstrap_rounds, seed=seed, anchor=anchor)
    return ratings


def rate(battles: str, out_dir: str, **kwargs) -> list[Rating]:
    out = output_dir(out_dir, [battles])
    return rate_file(read_battles(battles), out, judge=run_judge(Path(battles)), **kwargs)


def run_judge(path: Path) -> Optional[dict]:
    """The judge section (card, consistency on the run) of an arena run directory; None for a battles file."""
    board = path / "leaderboard.json"
    if not path.is_dir() or not board.exists():
        return None
    return read_json(board).get("judge")


def _rounded(matrix) -> list[list[Optional[float]]]:
    return [[None if v != v else round(float(v), 4) for v in row] for row in matrix]


def import_reviews(reviews: str, answers: str, out: str) -> tuple[int, int]:
    """Vicuna-bench reviews → a FastChat battles file; returns (battles written, self-battles dropped)."""
    output_file(out, [reviews, answers])
    result = import_vicuna_reviews(reviews, answers)
    with open(out, "w") as fh:
        for b in result.battles:
            fh.write(json.dumps({"question_id": b.question_id, "model_a": b.model_a, "model_b": b.model_b,
                                 "winner": b.winner, "conversation_a": [{"role": "assistant", "content": b.text_a}],
                                 "conversation_b": [{"role": "assistant", "content": b.text_b}]}) + "\n")
    return len(result.battles), result.self_battles_dropped


def consistency(ours: str, reference: str, names: Optional[str], out: Optional[str]) -> dict:
    if out:
        output_file(out, [ours, reference, names])
    result = compare(rename(load_board(ours), names), load_board(reference))
    if out:
        Path(out).write_text(json_text(result, indent=2) + "\n")
    return result
