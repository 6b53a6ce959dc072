"""When does a finite Bradley–Terry maximum-likelihood rating exist? Pure (numpy, scipy.sparse).

Draw an arrow i → j when i took any share of a win from j (a win, or a tie: half each way). The unpenalised
MLE is finite exactly when every model can reach every other along arrows (the graph is strongly connected).
A block of models that never lost to the rest has no finite rating relative to them (the likelihood keeps
rising as the gap grows). The treatment here: rate the largest strongly connected block exactly, and place
every other block above it (it never lost to it), below it (it never beat it) or apart (not compared).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, shortest_path


@dataclass(frozen=True)
class Blocks:
    rated: np.ndarray              # bool per model: in the block that gets finite ratings
    place: tuple[str, ...]         # per model: "" (rated) | "above" | "below" | "apart"
    groups: tuple[tuple[int, ...], ...]   # the strongly connected blocks (model indices), rated block first

    @property
    def separated(self) -> bool:
        return not bool(self.rated.all())


def win_graph(m: int, idx_a: np.ndarray, idx_b: np.ndarray, outcome: np.ndarray, weight: np.ndarray):
    """Arrow a → b where a took win share from b (outcome > 0), b → a where b did (outcome < 1)."""
    keep = weight > 0
    a, b, y = idx_a[keep], idx_b[keep], outcome[keep]
    src = np.concatenate([a[y > 0], b[y < 1]])
    dst = np.concatenate([b[y > 0], a[y < 1]])
    return coo_matrix((np.ones(len(src)), (src, dst)), shape=(m, m)).tocsr()


def blocks(m: int, idx_a: np.ndarray, idx_b: np.ndarray, outcome: np.ndarray, weight: np.ndarray,
           present: np.ndarray | None = None) -> Blocks:
    """The strongly connected blocks of the models that played (`present`), the largest of them rated."""
    graph = win_graph(m, idx_a, idx_b, outcome, weight)
    played = present if present is not None else np.ones(m, dtype=bool)
    if not played.any():
        return Blocks(np.zeros(m, dtype=bool), tuple("apart" for _ in range(m)), ())
    _, label = connected_components(graph, directed=True, connection="strong")
    games = np.asarray(graph.sum(axis=0)).ravel() + np.asarray(graph.sum(axis=1)).ravel()
    sizes = {c: (int(((label == c) & played).sum()), float(games[label == c].sum())) for c in set(label[played].tolist())}
    main = max(sizes, key=lambda c: (sizes[c], -c))   # the most models, then the most comparisons
    rated = (label == main) & played
    if rated.sum() == played.sum():
        return Blocks(rated, tuple("" for _ in range(m)), (tuple(np.flatnonzero(rated).tolist()),))
    reach = np.isfinite(shortest_path(graph, unweighted=True, indices=np.flatnonzero(rated)[:1]))[0]
    back = np.isfinite(shortest_path(graph.T.tocsr(), unweighted=True, indices=np.flatnonzero(rated)[:1]))[0]
    place = tuple("" if rated[i] else "apart" if not played[i] else
                  "below" if reach[i] else "above" if back[i] else "apart" for i in range(m))
    others = sorted({int(c) for c in label[played & ~rated]})
    groups = (tuple(np.flatnonzero(rated).tolist()),) + tuple(tuple(np.flatnonzero((label == c) & played).tolist())
                                                            for c in others)
    return Blocks(rated, place, groups)
