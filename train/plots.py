"""PNG plots (matplotlib, Agg backend, written atomically): CMC curves and training curves."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reid_edge.io import atomic_write_bytes


def _figure() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    atomic_write_bytes(path, buf.getvalue())


def plot_cmc(cmc: Sequence[float], path: str | Path, title: str = "CMC", max_rank: int = 50) -> None:
    """Rank-k accuracy against k (values in [0, 1] shown as percent)."""
    plt = _figure()
    values = np.asarray(cmc, dtype=float)[:max_rank] * 100.0
    fig, ax = plt.subplots(figsize=(5, 4))
    try:
        ax.plot(np.arange(1, len(values) + 1), values, marker="o", markersize=3)
        ax.set_xlabel("rank")
        ax.set_ylabel("matching rate (%)")
        ax.set_ylim(0, 100)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        _save(fig, path)
    finally:
        plt.close(fig)


def plot_curves(history: Sequence[dict[str, Any]], path: str | Path) -> None:
    """Training loss per epoch, and mAP/rank-1 at the epochs that were evaluated."""
    plt = _figure()
    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    try:
        ax1.plot(epochs, [h.get("loss", np.nan) for h in history], marker="o", markersize=3)
        ax1.set_xlabel("epoch")
        ax1.set_ylabel("loss")
        ax1.set_title("training loss")
        ax1.grid(True, alpha=0.3)
        evald = [h for h in history if h.get("mAP") is not None]
        if evald:
            ax2.plot([h["epoch"] for h in evald], [100 * h["mAP"] for h in evald], marker="o", label="mAP")
            ax2.plot([h["epoch"] for h in evald], [100 * h["rank1"] for h in evald], marker="s", label="rank-1")
            ax2.legend()
        else:
            ax2.text(0.5, 0.5, "no evaluation split", ha="center", va="center", transform=ax2.transAxes)
        ax2.set_xlabel("epoch")
        ax2.set_ylabel("%")
        ax2.set_title("evaluation")
        ax2.grid(True, alpha=0.3)
        fig.tight_layout()
        _save(fig, path)
    finally:
        plt.close(fig)
