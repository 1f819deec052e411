"""Does the search pay? dfsweep's search (TPE + ASHA) against random search with FIFO, same space, same CPUs.

    python benchmarks/search_efficiency.py [--data ../shared/data/dfdc-faces/train] [--image-size 64]
                                           [--epochs 8] [--budget 240] [--seeds 3] [--concurrent 2]
                                           [--val-fraction 0.25] [--grace 1]

Both sides run `dfsweep run search_spaces/deepfakenet.yaml` through the real CLI on the real faces at a low
fidelity (`--image-size`, `--epochs`), with the same search space (the shipped DeepFakeNet space), the same
validation split, `--concurrent` trials of 1 CPU each, the same time budget (`sweep.time_budget_s`), and
the recipe as their first trial; only the search differs:
* dfsweep: `sweep.sampler: tpe` (multivariate, group, constant liar) with ASHA (grace `--grace`, x3);
* random: `sweep.sampler: random` with FIFO (every trial runs all its epochs).
Each side runs `--seeds` times (sweep.seed 1, 2, ...). Neither side's own confirmation runs
(`confirm.top_k: 0`): the benchmark confirms instead, outside the timed sweeps.

What is compared: at every moment of a sweep, its incumbent is the trial with the best validation AUC
reported so far (any epoch). Each incumbent's configuration is trained once more from scratch with another
training seed at the same fidelity, in this process after the sweeps; its best validation AUC there is the
incumbent's *confirmed* AUC, so a lucky seed does not count. The curve of a side is the confirmed AUC of its
incumbent against wall time since `dfsweep run` started, averaged over its seeds (0.5 before any report).
The level is where random search's curve ends (the end of its budget); T_x is the first time side x's
curve reaches that level. Prints the table, the curves, and `ratio: T_random / T_dfsweep` (0 when dfsweep
never reaches the level).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from _common import trial_results  # benchmarks/ is sys.path[0] for a script

REPO = Path(__file__).resolve().parents[1]
SPACE_YAML = REPO / "search_spaces" / "deepfakenet.yaml"
SIDES = {
    "dfsweep": ["sweep.sampler=tpe", "sweep.scheduler.name=asha"],
    "random": ["sweep.sampler=random", "sweep.scheduler.name=fifo"],
}


def _sets(a, side: str, seed: int) -> List[str]:
    return SIDES[side] + [
        f"data.image_size={a.image_size}", f"data.val_fraction={a.val_fraction}", "data.cache_dir=cache",
        f"train.epochs={a.epochs}", f"sweep.time_budget_s={a.budget}", "sweep.num_samples=500",
        f"sweep.max_concurrent_trials={a.concurrent}", "sweep.resources_per_trial.cpu=1", f"sweep.seed={seed}",
        f"sweep.scheduler.grace_period={a.grace}", "sweep.metric=auc", "sweep.confirm.top_k=0",
    ]


def run_side(a, side: str, seed: int, work: Path) -> Tuple[List[Tuple[float, str, float]], Dict[str, dict], float]:
    """One timed sweep -> ([(seconds since its first trial started, trial id, objective)] of each report,
    configs, wall of the whole command). The clock starts with the first trial, where the search's budget
    starts too: Ray's start and the data's decoding are the same for both sides and not the search's doing."""
    name = f"{side}-{seed}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "dfsweep", "run", str(SPACE_YAML), "--data", a.data,
                           "--name", name, *sum((["--set", s] for s in _sets(a, side, seed)), [])],
                          cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.time() - t0
    if proc.returncode != 0:
        print(proc.stdout[-3000:])
        raise SystemExit(f"{name}: dfsweep run failed with exit code {proc.returncode}")
    reports, configs = [], {}
    trials = trial_results(work / "sweeps" / name / "tune")
    start = min(rows[0]["timestamp"] - rows[0]["time_total_s"] for rows in trials)
    for rows in trials:
        tid = rows[0]["trial_id"]
        configs[tid] = rows[0]["config"]
        reports += [(r["timestamp"] - start, tid, r["objective"]) for r in rows if "objective" in r]
    return sorted(reports), configs, wall


def incumbents(reports: List[Tuple[float, str, float]]) -> List[Tuple[float, str]]:
    """(time, trial id) each time the best AUC reported so far changes hands."""
    out, best = [], -np.inf
    for t, tid, v in reports:
        if v == v and v > best:
            best = v
            if not out or out[-1][1] != tid:
                out.append((t, tid))
    return out


def confirm(config: dict, data, space) -> float:
    """The configuration trained again with training seed +1 (the same split): its best validation AUC."""
    from dfsweep.objective import objective_of
    from dfsweep.roles import CONFIRM, FOLD, OF, ROLE, SEED_OFFSET, trial_config
    from dfsweep.train import fit
    cfg = trial_config(space, {**config, ROLE: CONFIRM, OF: "", SEED_OFFSET: 1, FOLD: 0}).replace({"train.threads": 2})
    return objective_of(fit(cfg, data, select="auc").history, "auc")["objective"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="../shared/data/dfdc-faces/train")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--budget", type=float, default=240, help="each sweep's time budget, seconds")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--concurrent", type=int, default=2)
    p.add_argument("--val-fraction", type=float, default=0.25)
    p.add_argument("--grace", type=int, default=1)
    p.add_argument("--keep", help="keep the sweeps in this folder (default: a temporary one)")
    a = p.parse_args()
    if not Path(a.data).is_dir():
        raise SystemExit(f"{a.data}: no such folder (see --data)")
    a.data = str(Path(a.data).resolve())     # the sweeps run in a scratch folder

    work = Path(a.keep or tempfile.mkdtemp(prefix="dfsweep-search-eff-"))
    work.mkdir(parents=True, exist_ok=True)
    from dfsweep.config import load_config
    from dfsweep.data import load_labelled
    from dfsweep.space import parse_space
    base = load_config(SPACE_YAML, [f"data.train={a.data}"] + _sets(a, "dfsweep", 1))
    os.chdir(work)
    data = load_labelled(base.data)          # decoded into the cache both sides read: no side pays for it
    runs = {}
    for seed in range(1, a.seeds + 1):
        for side in SIDES:                                      # alternate sides: drift hits both alike
            reports, configs, wall = run_side(a, side, seed, work)
            runs[(side, seed)] = (reports, configs, wall)
            print(f"{side:8s} seed {seed}: {len(configs)} trials, {len(reports)} epochs, wall {wall:.0f} s", flush=True)

    # confirm every incumbent (outside the timed sweeps)
    space = parse_space(base)
    confirmed: Dict[Tuple[str, int, str], float] = {}
    steps: Dict[Tuple[str, int], List[Tuple[float, float]]] = {}
    for key, (reports, configs, _) in runs.items():
        steps[key] = []
        for t, tid in incumbents(reports):
            if (*key, tid) not in confirmed:
                confirmed[(*key, tid)] = confirm(configs[tid], data, space)
            steps[key].append((t, confirmed[(*key, tid)]))
        print(f"{key[0]:8s} seed {key[1]}: incumbents " +
              ", ".join(f"{t:.0f}s {v:.3f}" for t, v in steps[key]), flush=True)

    grid = np.arange(0, a.budget + 30, 5.0)
    def curve(side: str) -> np.ndarray:
        per_seed = []
        for seed in range(1, a.seeds + 1):
            values = np.full(len(grid), 0.5)
            for t, v in steps[(side, seed)]:
                values[grid >= t] = v
            per_seed.append(values)
        return np.mean(per_seed, axis=0)
    curves = {side: curve(side) for side in SIDES}
    print("\nconfirmed validation AUC of the incumbent against wall time (mean over seeds):")
    print("   t (s)  " + "  ".join(f"{s:>8s}" for s in SIDES))
    for i in range(0, len(grid), 6):
        print(f"  {grid[i]:6.0f}  " + "  ".join(f"{curves[s][i]:8.3f}" for s in SIDES))
    end = int(np.searchsorted(grid, a.budget, side="right")) - 1
    level = curves["random"][end]
    reach = {s: next((grid[i] for i in range(len(grid)) if curves[s][i] >= level - 1e-12), np.inf) for s in SIDES}
    finals = {s: [steps[(s, k)][-1][1] if steps[(s, k)] else 0.5 for k in range(1, a.seeds + 1)] for s in SIDES}
    for s in SIDES:
        print(f"{s:8s}: final confirmed AUC {np.mean(finals[s]):.3f} (seeds {', '.join(f'{v:.3f}' for v in finals[s])}); "
              f"reaches {level:.3f} at {reach[s]:.0f} s")
    print(json.dumps({"level": level, "T": {s: float(reach[s]) for s in SIDES}}))
    ratio = reach["random"] / reach["dfsweep"] if np.isfinite(reach["dfsweep"]) and reach["dfsweep"] > 0 else 0.0
    print(f"ratio: {ratio:.3f}")


if __name__ == "__main__":
    main()
