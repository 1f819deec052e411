"""How far one machine goes: sets of about 0.25x, 1x and 2x the memory a sweep may use (a cgroup memory limit),
decoded into the cache and trained from it; the code before the cache beside it where `--old` names a checkout.

    python benchmarks/scale.py --base DFDC_TRAIN_LARGE [--limit-gib 3] [--fractions 0.25,1,2]
                               [--image-size 256] [--steps 40] [--old CHECKOUT] [--work DIR]

Needs root (a cgroup-v1 memory controller, `benchmarks/memlimit.py`). A set of n images is the base set's faces
named again under n names (each name in its picture's group, so copies never straddle a split). Per size:
* sweep: `dfsweep run` of one trial (DeepFakeNet width 0.25, one epoch over a `sweep.data_fraction` share of 400
  images, the same work at every size) under the limit: wall time, the decode time it reports, each process's
  peak memory (anonymous + shared; page cache excluded) and whether the kernel killed anything;
* training: `--steps` batches of 16 at rows drawn at random from the whole set, read from the cache, and where
  the set fits in a quarter of the limit, from the array in memory: images/s of one trial, under the limit.
Prints a row per size and per code, then `ratio: cached / in-memory training images/s at the smallest size`.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import tempfile
from pathlib import Path

import yaml

from memlimit import run_limited          # benchmarks/ is sys.path[0] for a script

ROW_BYTES = 3


def make_set(base: Path, n: int, out: Path) -> Path:
    """`n` names for the base set's faces (labels.csv: image,label,group), each in its picture's group."""
    with open(base / "labels.csv") as f:
        rows = list(csv.DictReader(f))
    out.mkdir(parents=True, exist_ok=True)
    lines = ["image,label,group"]
    for i in range(n):
        r = rows[i % len(rows)]
        name = f"f{i:07d}{Path(r['image']).suffix}"
        link = out / name
        if not link.is_symlink():
            link.symlink_to((base / r["image"]).resolve())
        lines.append(f"{name},{r['label']},{r.get('group') or Path(r['image']).stem}")
    (out / "labels.csv").write_text("\n".join(lines) + "\n")
    return out


def sweep_spec(data: Path, n: int, size: int, folder: Path) -> Path:
    spec = {"data": {"train": str(data), "image_size": size, "cache_dir": str(folder / "cache")},
            "model": {"name": "deepfakenet", "width": 0.25},
            "train": {"epochs": 1, "batch_size": 16},
            "sweep": {"num_samples": 1, "data_fraction": min(1.0, 400 / n), "confirm": {"top_k": 0}},
            "search": {"train.lr": {"float": [1e-4, 1e-3], "log": True}}}
    path = folder / "space.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _env(old: Path | None) -> dict:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if old is not None:
        env["PYTHONPATH"] = str(old)
    return env


def run_sweep(spec: Path, folder: Path, limit: int, old: Path | None) -> dict:
    r = run_limited([sys.executable, "-m", "dfsweep", "run", str(spec), "--name", "s"], limit, cwd=folder,
                    env=_env(old), timeout=3600)
    decode = re.search(r"decoded (\d+) images at \d+ px in ([\d.]+) ?s", r.output)
    peaks = {"driver": 0, "decode task": 0, "trial": 0, "other": 0}
    for name, held in r.process_peaks.items():
        kind = ("decode task" if "_build_here" in name else "trial" if "ImplicitFunc" in name
                else "driver" if "dfsweep" in name and "ray::" not in name else "other")
        peaks[kind] = max(peaks[kind], held)
    return {"rc": r.returncode, "oom_kills": r.oom_kills, "wall_s": r.wall_s,
            "decode_s": float(decode.group(2)) if decode else None, "peaks": peaks, "tail": r.output[-1500:]}


def measure_training(spec: Path, steps: int, in_memory: bool) -> None:
    """(In a process of its own, under the limit) one trial's training speed on rows drawn from the whole set."""
    import numpy as np
    import dataclasses
    from dfsweep.config import load_config
    from dfsweep.data import load_labelled
    from dfsweep.train import fit
    cfg = load_config(str(spec), ["train.threads=2"])
    data = load_labelled(cfg.data)              # a cache hit: the sweep decoded it
    if in_memory:
        data = dataclasses.replace(data, images=np.asarray(data.images))
    rows = np.random.default_rng(0).choice(len(data), size=steps * cfg.train.batch_size, replace=False)
    res = fit(cfg, data, train_idx=rows, val_idx=[])
    print(json.dumps({"images_per_s": res.history[-1]["train_images_per_s"]}))


def run_training(spec: Path, folder: Path, limit: int, steps: int, in_memory: bool) -> float | None:
    cmd = [sys.executable, __file__, "--measure-train", str(spec), "--steps", str(steps)]
    r = run_limited(cmd + (["--in-memory"] if in_memory else []), limit, cwd=folder, env=_env(None), timeout=3600)
    found = [json.loads(l) for l in r.output.splitlines() if l.startswith("{")]
    return found[-1]["images_per_s"] if r.returncode == 0 and found else None


def gib(n: float) -> str:
    return f"{n / 2**30:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", help="a labelled set (images + labels.csv) whose faces the sets reuse")
    ap.add_argument("--limit-gib", type=float, default=3.0)
    ap.add_argument("--fractions", default="0.25,1,2", help="set sizes as multiples of the limit, decoded")
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--old", type=Path, help="a checkout of the code before the cache, run the same way")
    ap.add_argument("--work", type=Path, help="where sets and caches go (default: a temporary folder)")
    ap.add_argument("--measure-train", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--in-memory", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure_train:
        measure_training(args.measure_train, args.steps, args.in_memory)
        return
    if not args.base:
        ap.error("--base is required")
    limit = int(args.limit_gib * 2**30)
    row = args.image_size ** 2 * ROW_BYTES
    work = args.work or Path(tempfile.mkdtemp(prefix="dfsweep-scale-"))
    print(f"limit {args.limit_gib:g} GiB, {args.image_size} px ({row // 1024} KiB an image), work in {work}")
    print("| images | decoded GiB | code | exit | OOM kills | sweep wall s | decode s | peak GiB driver | "
          "decode task | trial | train img/s cached | in memory |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    ratio = None
    for frac in [float(f) for f in args.fractions.split(",")]:
        n = int(frac * limit / row)
        data = make_set(Path(args.base), n, work / f"set-{n}")
        codes = [("cache", None)] + ([("before", args.old)] if args.old else [])
        for code, old in codes:
            folder = work / f"run-{n}-{code}"
            folder.mkdir(parents=True, exist_ok=True)
            spec = sweep_spec(data, n, args.image_size, folder)
            s = run_sweep(spec, folder, limit, old)
            cached = mem = None
            if code == "cache" and s["rc"] == 0:
                cached = run_training(spec, folder, limit, args.steps, in_memory=False)
                if n * row <= limit / 4:
                    mem = run_training(spec, folder, limit, args.steps, in_memory=True)
                    if cached and mem and ratio is None:
                        ratio = cached / mem
            p = s["peaks"]
            fmt = lambda v: "-" if v is None else f"{v:.1f}"
            print(f"| {n:,} | {gib(n * row)} | {code} | {s['rc']} | {s['oom_kills']} | {s['wall_s']:.0f} | "
                  f"{fmt(s['decode_s'])} | {gib(p['driver'])} | {gib(p['decode task'])} | {gib(p['trial'])} | "
                  f"{fmt(cached)} | {fmt(mem)} |", flush=True)
            if s["rc"] != 0 and code == "cache":
                print(s["tail"])
    if ratio is not None:
        print(f"ratio: {ratio:.3f}")


if __name__ == "__main__":
    main()
