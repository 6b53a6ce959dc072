"""How well our leaderboard predicts a reference one (e.g. the human Chatbot Arena). Pure numpy/scipy.

Metrics over the models both boards share:
- spearman, kendall: rank correlations of the ratings.
- agreement (arena-hard "agreement with 95% CI"): over model pairs the reference separates (CIs don't overlap;
  all pairs if it has no CIs), +1 where our CIs also separate them in the same order, -1 in the opposite
  order, 0 where ours don't separate them; averaged.
- separability: share of all model pairs whose CIs don't overlap on our board.
- brier: over reference-separated pairs, mean squared error of our predicted P(i beats j) against the
  reference's order (only where the reference has CIs).
- arena_learning_consistency: the mean of spearman, kendall and agreement (Arena Learning's summary).
"""
from __future__ import annotations

import itertools
from typing import Mapping

import numpy as np
from scipy.stats import kendalltau, spearmanr

from arena_ray.errors import InputError
from arena_ray.records import BoardEntry


def _separated(x: BoardEntry, y: BoardEntry) -> bool:
    return x.has_ci and y.has_ci and (x.ci_low > y.ci_high or y.ci_low > x.ci_high)


def compare(ours: Mapping[str, BoardEntry], reference: Mapping[str, BoardEntry], scale: float = 400.0) -> dict:
    shared = sorted(set(ours) & set(reference))
    result = {"models": len(shared), "matched": shared, "unmatched_ours": sorted(set(ours) - set(reference)),
              "unmatched_reference_count": len(set(reference) - set(ours))}
    if len(shared) < 3:
        raise InputError(f"need at least 3 models on both boards to compare, have {len(shared)}: {shared}; "
                         f"unmatched on ours: {result['unmatched_ours']} (map names with --names)")
    a = np.array([ours[m].rating for m in shared])
    b = np.array([reference[m].rating for m in shared])
    result["spearman"] = float(spearmanr(a, b).statistic)
    result["kendall"] = float(kendalltau(a, b).statistic)
    ref_has_ci = all(reference[m].has_ci for m in shared)
    pairs = list(itertools.combinations(shared, 2))
    scores, sq_errors, separable = [], [], 0
    for i, j in pairs:
        separable += _separated(ours[i], ours[j])
        if ref_has_ci and not _separated(reference[i], reference[j]):
            continue
        ref_order = np.sign(reference[i].rating - reference[j].rating)
        our_order = np.sign(ours[i].rating - ours[j].rating)
        scores.append(0.0 if not _separated(ours[i], ours[j]) else (1.0 if our_order == ref_order else -1.0))
        if ref_has_ci:
            p_i = 1 / (1 + 10 ** ((ours[j].rating - ours[i].rating) / scale))
            sq_errors.append((p_i - (1.0 if ref_order > 0 else 0.0)) ** 2)
    result["agreement"] = float(np.mean(scores)) if scores else None
    result["reference_separated_pairs"] = len(scores)
    result["separability"] = separable / len(pairs)
    result["brier"] = float(np.mean(sq_errors)) if sq_errors else None
    parts = [result["spearman"], result["kendall"], result["agreement"]]
    result["arena_learning_consistency"] = float(np.mean(parts)) if None not in parts else None
    return result
