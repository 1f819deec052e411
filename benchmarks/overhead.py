"""What a dfsweep sweep costs beyond its trials' own compute.

    python benchmarks/overhead.py [--data ../shared/data/dfdc-faces/train] [--image-size 128]
                                  [--trials 8] [--epochs 8] [--grace 2] [--cpus 2] [--concurrent 1]

Runs `dfsweep run` on a generated YAML (the search of benchmarks/_common.py) and compares its wall time —
from launching the command to its exit: Ray start, data decode into a cold cache, Optuna, ASHA,
checkpoints every epoch, MLflow logging, the leaderboard — with the sum of the trials' compute, i.e. the
time each trial spent training and validating (`epoch_time_s`, summed over every epoch of every trial).

With `concurrent` trials at a time the machine does up to `concurrent` trials' compute per second of wall
time, so the last line is `ratio: Σ trial compute / (wall × concurrent)` (1.0 = no overhead at all).
By default one trial at a time gets the whole machine (--cpus 2), where this is plain Σ compute / wall.
The overhead is mostly fixed (~20 s: start, Ray, the MLflow store, the first trial process, the end), so the
ratio grows with the sweep; the default is a ~5-minute sweep on this 2-core CPU.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import dfsweep_yaml, run_dfsweep, trial_results  # benchmarks/ is sys.path[0] for a script


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/dfdc-faces/train")
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--grace", type=int, default=2)
    ap.add_argument("--cpus", type=float, default=2)
    ap.add_argument("--concurrent", type=int, default=1)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="dfsweep-overhead-") as tmp:
        tmp = Path(tmp)
        spec = dfsweep_yaml(tmp, data=args.data, image_size=args.image_size, trials=args.trials, epochs=args.epochs,
                            cpus=args.cpus, concurrent=args.concurrent, grace=args.grace)
        print(f"search: {args.trials} trials x <= {args.epochs} epochs, ASHA grace {args.grace}, "
              f"{args.concurrent} at a time with {args.cpus:g} CPU each, {args.image_size} px, data {args.data}")
        wall = run_dfsweep(spec, tmp)
        trials = trial_results(tmp / "sweeps" / "bench")
        per_trial = [sum(r.get("epoch_time_s", 0.0) for r in t) for t in trials]
        compute = sum(per_trial)
        epochs = sum(len(t) for t in trials)
        print(f"wall: {wall:.1f} s for {len(trials)} trials, {epochs} epochs")
        print(f"trial compute: {compute:.1f} s in all (per trial: {', '.join(f'{c:.0f}' for c in per_trial)})")
        print(f"overhead: {wall * args.concurrent - compute:.1f} slot-seconds")
        print(f"ratio: {compute / (wall * args.concurrent):.3f}")


if __name__ == "__main__":
    main()
