"""Style control (Chatbot Arena / arena-hard): Bradley–Terry with answer-style covariates, so that a model is
not rated up for being long or heavily formatted. Pure numpy.

Covariates per battle, as in arena-hard: for each style feature f, (f_a - f_b) / (f_a + f_b), scaled to unit root
mean square over the battles. The ratings are the model coefficients of the joint logistic regression; the style coefficients say
how much each feature sways the judge (positive: more of it wins).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from scipy.special import expit

from arena_ray.errors import ConfigError, InputError
from arena_ray.rating.bradley_terry import OUTCOME, to_elo
from arena_ray.records import Rating

FEATURES = ("length", "headers", "list_items", "bold")
# A whisper of L2 keeps the joint fit finite when a model or a style feature separates the outcomes (the plain
# Bradley-Terry board handles separation exactly and by name; this board is its style-adjusted companion).
L2 = 1e-4
_HEADER = re.compile(r"^#{1,6}\s", re.M)
_LIST = re.compile(r"^\s*(?:[-*+]|\d+\.)\s", re.M)
_BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")


def style_features(text: str, tokens: Optional[int] = None) -> np.ndarray:
    """Length (tokens if known, else whitespace words) and markdown element counts of one answer."""
    length = tokens if tokens is not None else len(text.split())
    return np.array([length, len(_HEADER.findall(text)), len(_LIST.findall(text)), len(_BOLD.findall(text))],
                    dtype=float)


@dataclass(frozen=True)
class StyledBattle:
    model_a: str
    model_b: str
    winner: str
    style_a: np.ndarray
    style_b: np.ndarray


@dataclass(frozen=True)
class StyleFit:
    ratings: list[Rating]
    coefficients: dict[str, float]  # per feature, in log-odds per standard deviation


def _design(battles: Sequence[StyledBattle], models: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    index = {m: i for i, m in enumerate(models)}
    n, m = len(battles), len(models)
    x = np.zeros((n, m + len(FEATURES)))
    y = np.empty(n)
    for k, b in enumerate(battles):
        if b.winner not in OUTCOME:
            raise InputError(f"battle {k}: unknown winner label '{b.winner}'")
        x[k, index[b.model_a]], x[k, index[b.model_b]] = 1.0, -1.0
        total = b.style_a + b.style_b
        with np.errstate(invalid="ignore", divide="ignore"):
            x[k, m:] = np.where(total > 0, (b.style_a - b.style_b) / total, 0.0)
        y[k] = OUTCOME[b.winner]
    # Scaled, not centred: the covariates are antisymmetric (swapping a and b negates them), and centring
    # would move a model's habit of being longer into its rating - the very thing to control for.
    rms = np.sqrt((x[:, m:] ** 2).mean(axis=0))
    x[:, m:] /= np.where(rms > 0, rms, 1.0)
    return x, y


def _newton(x: np.ndarray, y: np.ndarray, w: np.ndarray, iterations: int = 50) -> np.ndarray:
    beta = np.zeros(x.shape[1])
    w = w / w.sum()
    for _ in range(iterations):
        p = expit(x @ beta)
        grad = x.T @ (w * (p - y)) + 2 * L2 * beta
        hess = (x * (w * p * (1 - p))[:, None]).T @ x + 2 * L2 * np.eye(x.shape[1])
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-10:
            break
    return beta


def fit_style_controlled(battles: Sequence[StyledBattle], *, bootstrap_rounds: int = 100, seed: int = 0,
                         scale: float = 400.0, base: float = 1000.0,
                         anchor: Optional[tuple[str, float]] = None) -> StyleFit:
    if not battles:
        raise InputError("no battles to rate")
    models = tuple(sorted({m for b in battles for m in (b.model_a, b.model_b)}))
    x, y = _design(battles, models)
    m = len(models)

    def ratings_of(beta: np.ndarray) -> np.ndarray:
        theta = beta[..., :m] - beta[..., :m].mean(axis=-1, keepdims=True)
        ratings = to_elo(theta, scale, base)
        if anchor is None:
            return ratings
        if anchor[0] not in models:
            raise ConfigError(f"anchor model '{anchor[0]}' is not among the rated models")
        return ratings + (anchor[1] - ratings[..., models.index(anchor[0])])[..., None]

    beta = _newton(x, y, np.ones(len(y)))
    point = ratings_of(beta)
    low, high = point.copy(), point.copy()
    if bootstrap_rounds > 0:
        rng = np.random.default_rng(seed)
        weights = rng.multinomial(len(y), np.full(len(y), 1 / len(y)), size=bootstrap_rounds).astype(float)
        boots = np.stack([ratings_of(_newton(x, y, w)) for w in weights])
        low, high = np.percentile(boots, 2.5, axis=0), np.percentile(boots, 97.5, axis=0)
    games = np.abs(x[:, :m]).sum(axis=0)
    ratings = [Rating(name, float(point[i]), float(min(low[i], point[i])), float(max(high[i], point[i])),
                      int(games[i])) for i, name in enumerate(models)]
    coefficients = {f: float(c) for f, c in zip(FEATURES, beta[m:])}
    return StyleFit(sorted(ratings, key=lambda r: -r.rating), coefficients)
