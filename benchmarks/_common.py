"""Shared by the sweep benchmarks: one search, written as a dfsweep YAML, run through the real CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import yaml

# the search both sides run: the recipe's model, four searchable settings
SPACE = {
    "train.lr": (1e-4, 3e-3, True),
    "loss.bce_weight": (0.2, 1.0, False),
    "loss.gamma": (0.5, 3.0, False),
    "model.dropout": (0.0, 0.5, False),
}


def dfsweep_yaml(out: Path, *, data: str, image_size: int, trials: int, epochs: int, cpus: float,
                 concurrent: int, grace: int, gpu: float = 0, seed: int = 42, name: str = "bench", extra: Dict[str, Any] | None = None) -> Path:
    spec: Dict[str, Any] = {
        "data": {"train": str(Path(data).absolute()), "image_size": image_size, "cache_dir": "cache"},
        "model": {"name": "deepfakenet"},
        "train": {"epochs": epochs, "batch_size": 16, "seed": seed},
        "sweep": {"name": name, "metric": "auc", "mode": "max", "num_samples": trials,
                  "max_concurrent_trials": concurrent, "seed": seed,
                  "scheduler": {"name": "asha", "grace_period": grace, "reduction_factor": 2},
                  "resources_per_trial": {"cpu": cpus, "gpu": gpu}},
        "search": {k: {"float": [lo, hi], **({"log": True} if log else {})} for k, (lo, hi, log) in SPACE.items()},
    }
    for k, v in (extra or {}).items():
        section, key = k.split(".", 1)
        spec.setdefault(section, {})[key] = v
    path = out / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def run_dfsweep(spec: Path, cwd: Path) -> float:
    """`dfsweep run spec` in `cwd` (its sweeps/ lands there); returns the command's wall time."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "dfsweep", "run", str(spec)], cwd=cwd, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(proc.stdout[-3000:])
        raise SystemExit(f"dfsweep run failed with exit code {proc.returncode}")
    return wall


def trial_results(root: Path) -> List[List[Dict[str, Any]]]:
    """Every trial's reported results (Tune's result.json files under `root`), one list per trial."""
    out = []
    for f in sorted(root.rglob("result.json")):
        rows = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
        if rows:
            out.append(rows)
    return out
