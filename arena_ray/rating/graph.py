"""Connectivity of the comparison graph: ratings in different components are not comparable. Pure."""
from __future__ import annotations

from typing import Iterable


def components(pairs: Iterable[tuple[str, str]]) -> list[list[str]]:
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        parent[find(a)] = find(b)
    groups: dict[str, list[str]] = {}
    for m in list(parent):
        groups.setdefault(find(m), []).append(m)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: (-len(g), g))
