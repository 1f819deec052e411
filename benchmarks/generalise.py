"""Two (or more) finalized configurations on held-out test sets: each model's AUC with its 95% interval, each
configuration's mean and spread over its training seeds, and a paired bootstrap of the first configuration
against each other one (rows redrawn by group, seeds redrawn too: `dfsweep.bootstrap.compare`).

    python benchmarks/generalise.py \
        --model picked=sweeps/generalise/final-s42/best_model_finetuned.pth \
        --model picked=sweeps/generalise/final-s43/best_model_finetuned.pth \
        --model in-domain=sweeps/generalise/final-auc-s42/best_model_finetuned.pth \
        --test dfdc=data/dfdc-faces/test --test ciplab-test=data/ciplab-halves/test [--json out.json]

Every model is scored at its own resolution (its checkpoint's data.image_size); a difference whose 95%
interval includes 0 is reported as a tie.
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from typing import Dict, List

import numpy as np

from dfsweep.bootstrap import Run, compare, intervals
from dfsweep.data import load_labelled
from dfsweep.metrics import score
from dfsweep.predict import load_model, score_images


def _pairs(items: List[str], what: str) -> List[tuple]:
    out = []
    for item in items:
        if "=" not in item:
            raise SystemExit(f"{what} {item!r}: expected LABEL=PATH")
        out.append(tuple(item.split("=", 1)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True, help="LABEL=checkpoint (repeat a label per seed)")
    ap.add_argument("--test", action="append", required=True, help="NAME=labelled folder")
    ap.add_argument("--json", help="write every number here too")
    args = ap.parse_args()
    models = _pairs(args.model, "--model")
    tests = _pairs(args.test, "--test")
    labels = list(dict.fromkeys(label for label, _ in models))
    loaded = [(label, path, load_model(path)) for label, path in models]
    report: Dict[str, dict] = {}
    for test_name, test_path in tests:
        runs: Dict[str, List[Run]] = defaultdict(list)
        rows = []
        y = groups = None
        for label, path, lm in loaded:
            data = load_labelled(lm.cfg.data, test_path)
            y, groups = data.labels, data.groups
            probs = score_images(lm, data.images)
            m = {**score(y, probs, threshold=lm.threshold), **intervals(y, probs, groups)}
            runs[label].append(Run(0, probs))
            rows.append({"config": label, "model": path, **{k: m[k] for k in ("auc", "auc_lo", "auc_hi", "ap",
                                                                          "recall", "precision", "f1")}})
        per_config = {}
        for label in labels:
            aucs = [r["auc"] for r in rows if r["config"] == label]
            per_config[label] = {"mean_auc": float(np.mean(aucs)), "std_auc": float(np.std(aucs, ddof=1))
                                 if len(aucs) > 1 else float("nan"), "n": len(aucs)}
        comparisons = {}
        for other in labels[1:]:
            c = compare(runs[labels[0]], runs[other], {0: (y, groups)}, "auc")
            comparisons[f"{labels[0]} - {other}"] = {"diff": c.diff, "lo": c.diff_lo, "hi": c.diff_hi,
                                                     "p_better": c.p_better,
                                                     "verdict": "separated" if c.separated() or c.p_better <= 0.05
                                                     else "tie"}
        report[test_name] = {"models": rows, "configs": per_config, "comparisons": comparisons}
        print(f"\n{test_name} ({test_path}: {len(y)} images, {int(y.sum())} fake)")
        for r in rows:
            print(f"  {r['config']:<12} AUC {r['auc']:.3f} [{r['auc_lo']:.3f}, {r['auc_hi']:.3f}]  AP {r['ap']:.3f}  "
                  f"recall {r['recall']:.2f} precision {r['precision']:.2f}  ({r['model']})")
        for label, c in per_config.items():
            print(f"  {label:<12} mean AUC {c['mean_auc']:.3f} ± {c['std_auc']:.3f} over {c['n']} seed(s)")
        for name, c in comparisons.items():
            print(f"  {name}: AUC difference {c['diff']:+.3f} [95% {c['lo']:+.3f}, {c['hi']:+.3f}], "
                  f"P(first better) {c['p_better']:.3f}: {c['verdict']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
