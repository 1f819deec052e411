"""Threshold choice and validation scores; scikit-learn computes every number."""
from __future__ import annotations

import math
from typing import Dict

import numpy as np
from sklearn.metrics import (
    average_precision_score, confusion_matrix, precision_recall_curve, roc_auc_score,
)

__all__ = ["choose_threshold", "score"]


def choose_threshold(y_true, scores, min_precision: float | None = None,
                     min_recall: float | None = None) -> Dict[str, float]:
    """The decision threshold on `scores` (predict fake when score >= threshold).

    Default rule: maximise F1; among thresholds with the same F1, take the higher fake-recall.
    With `min_precision=p`: the highest recall whose precision is >= p (ties -> higher precision);
    if no threshold reaches p, fall back to the F1 rule.
    With `min_recall=r` (a recall floor: catch at least r of the fakes): the highest precision whose
    recall is >= r (ties -> higher recall); the lowest score always reaches it.
    Returns threshold, f1, recall, precision.
    """
    if min_precision is not None and min_recall is not None:
        raise ValueError("choose one threshold rule: min_precision or min_recall")
    y = np.asarray(y_true).astype(int)
    s = np.asarray(scores, dtype=np.float64)
    if y.sum() == 0 or y.sum() == len(y):
        raise ValueError("threshold choice needs both classes in the labels")
    precision, recall, thresholds = precision_recall_curve(y, s)
    # the last (precision=1, recall=0) point has no threshold
    precision, recall = precision[:-1], recall[:-1]
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-300), 0.0)
    if min_precision is not None:
        ok = precision >= min_precision
        if ok.any():
            # lexicographic: recall first, then precision
            cand = np.flatnonzero(ok)
            best = cand[np.lexsort((precision[cand], recall[cand]))[-1]]
            return _pack(thresholds[best], f1[best], recall[best], precision[best])
    if min_recall is not None:
        cand = np.flatnonzero(recall >= min_recall - 1e-12)
        best = cand[np.lexsort((recall[cand], precision[cand]))[-1]]     # precision first, then recall
        return _pack(thresholds[best], f1[best], recall[best], precision[best])
    top = np.flatnonzero(np.isclose(f1, f1.max(), rtol=0, atol=1e-12))
    best = top[np.argmax(recall[top])]
    return _pack(thresholds[best], f1[best], recall[best], precision[best])


def _pack(t, f1, r, p) -> Dict[str, float]:
    return {"threshold": float(t), "f1": float(f1), "recall": float(r), "precision": float(p)}


def score(y_true, scores, threshold: float | None = None, min_precision: float | None = None) -> Dict[str, float]:
    """AUC, AP and, at `threshold` (chosen by `choose_threshold` when None), F1/recall/precision/confusion."""
    y = np.asarray(y_true).astype(int)
    s = np.asarray(scores, dtype=np.float64)
    both = 0 < y.sum() < len(y)
    out: Dict[str, float] = {
        "auc": float(roc_auc_score(y, s)) if both else math.nan,
        "ap": float(average_precision_score(y, s)) if both else math.nan,
    }
    if threshold is None:
        if not both:
            raise ValueError("threshold choice needs both classes in the labels")
        chosen = choose_threshold(y, s, min_precision)
        threshold = chosen["threshold"]
        if min_precision is not None:
            out["recall_at_precision"] = chosen["recall"] if chosen["precision"] >= min_precision else 0.0
    pred = (s >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    out.update(threshold=float(threshold), f1=float(f1), recall=float(recall), precision=float(precision),
               tn=int(tn), fp=int(fp), fn=int(fn), tp=int(tp))
    return out
