"""Detection quality on real faces: each artifact-aware option on and off, beside the naive baselines.

    python benchmarks/quality.py [--data ../shared/data/dfdc-faces/train] [--test ../shared/data/dfdc-faces/test]
                                 [--cross ../shared/data/ciplab-faces] [--epochs 15] [--image-size 128]
                                 [--only NAME ...] [--checkpoint sweeps/NAME/final/best_model_finetuned.pth]

For every variant: one training run from scratch on `--data` (the recipe's DeepFakeNet and settings,
plus the variant's overrides), on the stratified, group-aware 88/12 split; the epoch with the best
validation AUC is kept and its decision threshold chosen on validation (max F1, ties -> higher recall),
exactly as `dfsweep finalize` stage 1 does. Then, at that threshold, on `--test` (same kind of fakes, other
source videos) and on `--cross` (Photoshop composites, never trained on): AUC, AP, F1, fake-recall.

Baselines beside them: a logistic regression on eight global image statistics (channel means and
stds, JPEG size, Laplacian sharpness), fitted on `--data`.
`--checkpoint` adds the row of a finalized sweep winner (`dfsweep finalize`), scored the same way.
The table is printed as Markdown, with each run's wall time.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from dfsweep.config import config_from_dict
from dfsweep.data import load_labelled, split_indices
from dfsweep.metrics import choose_threshold, score
from dfsweep.train import fit, images_to_tensor, predict_scores

VARIANTS: Dict[str, Dict[str, Any]] = {
    "recipe (rgb)": {},
    "+ self_blend 0.5": {"augment.self_blend_p": 0.5},
    "+ input npr": {"model.input": "npr"},
    "+ input rgb+npr": {"model.input": "rgb+npr"},
    "+ input srm": {"model.input": "srm"},
    "+ input rgb+fft": {"model.input": "rgb+fft"},
    "+ jpeg 0.3 + rescale 0.3": {"augment.jpeg_p": 0.3, "augment.rescale_p": 0.3},
    "224 px": {"data.image_size": 224},
    "all: sbi + rgb+npr + jpeg/rescale": {"augment.self_blend_p": 0.5, "model.input": "rgb+npr",
                                          "augment.jpeg_p": 0.3, "augment.rescale_p": 0.3},
}


def _row(name: str, test: Dict[str, float], cross: Optional[Dict[str, float]], wall: float, note: str = "") -> str:
    def cells(m):
        if m is None:
            return "– | – | – | –"
        return f"{m['auc']:.3f} | {m['ap']:.3f} | {m['f1']:.3f} | {m['recall']:.3f}"
    return f"| {name} | {cells(test)} | {cells(cross)} | {wall:.0f} s | {note} |"


def _eval(model, cfg, threshold: float, path: Optional[str]) -> Optional[Dict[str, float]]:
    if not path:
        return None
    data = load_labelled(cfg.data, path)
    probs = predict_scores(model, images_to_tensor(data.images), cfg, torch.device("cpu"))
    return score(data.labels, probs, threshold=threshold)


def run_variant(base: Dict[str, Any], overrides: Dict[str, Any], args) -> tuple[Dict, Optional[Dict], float, str]:
    t0 = time.perf_counter()
    cfg = config_from_dict(base).replace(overrides)
    data = load_labelled(cfg.data)
    tr, va = split_indices(data.labels, data.groups, cfg.data.val_fraction, cfg.train.seed)
    result = fit(cfg, data, train_idx=tr, val_idx=va, select="auc")
    thr = choose_threshold(result.val_labels, result.val_scores)["threshold"]
    model = result.model
    model.load_state_dict(result.best_state)
    test = _eval(model, cfg, thr, args.test)
    cross = _eval(model, cfg, thr, args.cross)
    b = result.best_metrics
    note = f"best epoch {result.best_epoch}, val AUC {b['auc']:.3f}, train loss {b['train_loss']:.3f}"
    return test, cross, time.perf_counter() - t0, note


def _stats(paths: List[Path]) -> np.ndarray:
    """Eight global statistics per image: RGB means and stds, JPEG file size, Laplacian sharpness."""
    from PIL import Image
    feats = []
    for p in paths:
        a = np.asarray(Image.open(p).convert("RGB").resize((128, 128)), dtype=np.float32) / 255
        g = a.mean(axis=2)
        lap = np.abs(4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]).mean()
        feats.append([*a.mean(axis=(0, 1)), *a.std(axis=(0, 1)), p.stat().st_size / 1e4, lap])
    return np.array(feats)


def logistic_baseline(args, base) -> tuple[Dict, Optional[Dict], float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from dfsweep.data import list_labelled
    t0 = time.perf_counter()
    cfg = config_from_dict(base)

    def xy(path):
        listing = list_labelled(Path(path).absolute(), cfg.data)
        return _stats([Path(p) for p in listing.paths]), listing.labels, listing.groups

    x, y, groups = xy(args.data)
    tr, va = split_indices(y, groups, 0.12, 42)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, class_weight="balanced")).fit(x[tr], y[tr])
    thr = choose_threshold(y[va], clf.predict_proba(x[va])[:, 1])["threshold"]
    clf.fit(x, y)
    out = []
    for path in (args.test, args.cross):
        if not path:
            out.append(None)
            continue
        xt, yt, _ = xy(path)
        out.append(score(yt, clf.predict_proba(xt)[:, 1], threshold=thr))
    return out[0], out[1], time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/dfdc-faces/train")
    ap.add_argument("--test", default="../shared/data/dfdc-faces/test")
    ap.add_argument("--cross", default="../shared/data/ciplab-faces")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--only", nargs="*", help="variant names to run (default: all)")
    ap.add_argument("--checkpoint", help="a finalized model to score the same way")
    args = ap.parse_args()

    base = {"data": {"train": args.data, "image_size": args.image_size},
            "model": {"name": "deepfakenet"},
            "train": {"epochs": args.epochs, "seed": 42, "threads": args.threads}}
    print(f"data {args.data}, {args.image_size} px, {args.epochs} epochs per run, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print("| variant | test AUC | test AP | test F1 | test fake-recall | cross AUC | cross AP | cross F1 | "
          "cross fake-recall | wall | notes |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    test, cross, wall = logistic_baseline(args, base)
    print(_row("logistic regression, 8 global statistics", test, cross, wall), flush=True)
    for name, overrides in VARIANTS.items():
        if args.only and name not in args.only:
            continue
        test, cross, wall, note = run_variant(base, overrides, args)
        print(_row(name, test, cross, wall, note), flush=True)
    if args.checkpoint:
        from dfsweep.predict import load_model
        t0 = time.perf_counter()
        lm = load_model(args.checkpoint)
        test = _eval(lm.model, lm.cfg, lm.threshold, args.test)
        cross = _eval(lm.model, lm.cfg, lm.threshold, args.cross)
        print(_row(f"finalized: {args.checkpoint}", test, cross, time.perf_counter() - t0), flush=True)


if __name__ == "__main__":
    main()
