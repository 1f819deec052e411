"""PNG figures for finalize: the precision-recall curve and the confusion matrix (scikit-learn displays)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["pr_curve_png", "confusion_png"]


def _plt():
    import matplotlib
    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt
    return plt


def pr_curve_png(y, scores, threshold: float, path: Path, title: str = "validation") -> Path:
    from sklearn.metrics import PrecisionRecallDisplay, precision_score, recall_score
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    PrecisionRecallDisplay.from_predictions(y, scores, ax=ax, name="fake")
    pred = (np.asarray(scores) >= threshold).astype(int)
    ax.plot([recall_score(y, pred, zero_division=0)], [precision_score(y, pred, zero_division=0)], "o",
            color="crimson", label=f"threshold {threshold:.3f}")
    ax.set_title(f"Precision-recall ({title})")
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def confusion_png(y, scores, threshold: float, path: Path, title: str = "validation") -> Path:
    from sklearn.metrics import ConfusionMatrixDisplay
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    pred = (np.asarray(scores) >= threshold).astype(int)
    ConfusionMatrixDisplay.from_predictions(y, pred, labels=[0, 1], display_labels=["real", "fake"], ax=ax,
                                            colorbar=False)
    ax.set_title(f"{title} @ {threshold:.3f}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
