"""Online Elo (FastChat's compute_online_elo), for comparison with Bradley–Terry. Pure python."""
from __future__ import annotations

from collections import defaultdict
from typing import Sequence

from arena_ray.errors import InputError
from arena_ray.rating.bradley_terry import OUTCOME


def online_elo(battles: Sequence[tuple[str, str, str]], k: float = 4.0, scale: float = 400.0,
               base: float = 10.0, init: float = 1000.0) -> dict[str, float]:
    """Sequential updates in the order given; order matters, which is why BT is the headline rating."""
    rating: dict[str, float] = defaultdict(lambda: init)
    for n, (a, b, winner) in enumerate(battles):
        if winner not in OUTCOME:
            raise InputError(f"battle {n}: unknown winner label '{winner}'")
        expected_a = 1 / (1 + base ** ((rating[b] - rating[a]) / scale))
        delta = k * (OUTCOME[winner] - expected_a)
        rating[a] += delta
        rating[b] -= delta
    return dict(rating)
