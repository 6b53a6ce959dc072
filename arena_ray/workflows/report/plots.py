"""The report's figures (matplotlib, Agg) as inline SVG text, so the HTML page needs no other file."""
from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prologue: the SVG is inlined in HTML


def leaderboard(rows: list[dict], title: str) -> str:
    """Rated models with their intervals (an unbounded end drawn to the plot's edge); separated ones are listed
    in the table beside it, not plotted."""
    rows = [r for r in rows if r["rating"] is not None]
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * max(len(rows), 1)))
    names = [r["model"] for r in rows][::-1]
    ratings = [r["rating"] for r in rows][::-1]
    span = max((abs(r[k] - r["rating"]) for r in rows for k in ("ci_low", "ci_high") if r[k] is not None),
               default=50.0)
    err = [[r["rating"] - r["ci_low"] if r["ci_low"] is not None else 2 * span for r in rows][::-1],
           [r["ci_high"] - r["rating"] if r["ci_high"] is not None else 2 * span for r in rows][::-1]]
    ax.errorbar(ratings, range(len(names)), xerr=err, fmt="o", capsize=4, color="#1f5fa8")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("Bradley–Terry rating (95% bootstrap CI)")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return _svg(fig)


def heatmap(models: list[str], rates: list[list[float]], title: str) -> str:
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(models), 0.8 + 0.7 * len(models)))
    image = ax.imshow([[v if not math.isnan(v) else 0.5 for v in row] for row in rates], cmap="RdBu",
                      vmin=0, vmax=1)
    ax.set_xticks(range(len(models)), models, rotation=40, ha="right")
    ax.set_yticks(range(len(models)), models)
    for i, row in enumerate(rates):
        for j, v in enumerate(row):
            ax.text(j, i, "–" if math.isnan(v) else f"{v:.2f}", ha="center", va="center", fontsize=8)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="row model's win rate (ties half)")
    return _svg(fig)


def ratings_by_iteration(rows: list[dict]) -> str:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    rated = [r for r in rows if r["rating"] is not None]
    # An open interval end (None: unbounded) is drawn as no bar on that side.
    lows = [r["rating"] if not r.get("ci") or r["ci"][0] is None else r["ci"][0] for r in rated]
    highs = [r["rating"] if not r.get("ci") or r["ci"][1] is None else r["ci"][1] for r in rated]
    x = [r["iteration"] for r in rated]
    y = [r["rating"] for r in rated]
    err = [[r["rating"] - lo for r, lo in zip(rated, lows)], [hi - r["rating"] for r, hi in zip(rated, highs)]]
    ax.errorbar(x, y, yerr=err, fmt="o-", capsize=4, color="#b3441e")
    for r in rated:
        ax.annotate(r["version"], (r["iteration"], r["rating"]), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_xticks(x)
    ax.set_xlabel("iteration")
    ax.set_ylabel("rating on the offline test set")
    ax.set_title("Rating per iteration (95% CI)")
    ax.grid(alpha=0.3)
    return _svg(fig)


def data_volume(rows: list[dict]) -> str:
    stages = [(f"{r['iteration']}:{s['method']}", s) for r in rows for s in r["stages"]]
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(stages)), 3.5))
    width = 0.2
    for k, key in enumerate(("battles", "sft", "dpo", "rm")):
        ax.bar([i + (k - 1.5) * width for i in range(len(stages))], [s.get(key) or 0 for _, s in stages],
               width, label=key)
    ax.set_xticks(range(len(stages)), [name for name, _ in stages])
    ax.set_ylabel("rows")
    ax.set_title("Battles and curated data per stage")
    ax.legend()
    return _svg(fig)


def training_curves(curves: dict[str, list[tuple[int, float]]]) -> str:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, points in curves.items():
        ax.plot([p[0] for p in points], [p[1] for p in points], marker=".", label=name)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("training loss")
    ax.set_title("Training curves")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _svg(fig)
