"""How the decoded-image cache is read by trials: candidate mechanisms side by side on one set, in one run.

    python benchmarks/storage_candidates.py --data DFDC_TRAIN [--image-size 256] [--batches 150] [--readers 2]

Every candidate holds the same decoded uint8 pixels (dfsweep decodes the set once; the others are written from
that) and is read the way a trial reads: batches of 16 rows drawn at random from the whole set, by `--readers`
processes at once (trials of one node), each printing its images/s and its memory (anonymous, file-mapped, and
PSS: the shared pages divided among the processes mapping them). Each is read twice: with the page cache dropped
first (cold: a set larger than memory is read like this) and again (warm).
* shards-pread: dfsweep's cache, rows read with pread into the batch (`dfsweep/data/shards.py`);
* shards-mmap: the same files, memory-mapped (np.load mmap_mode="r") and indexed;
* litdata: LitData's `optimize` (64 MB chunks of raw arrays), read by `StreamingDataset(dir)[i]`
  (needs `pip install litdata`; skipped without it);
* ray-data: `ray.data.from_numpy(...).to_random_access_dataset`, Ray Data's random access, served by actors that
  hold the blocks (their memory is reported as the serving actors').
Prints a row per candidate and pass, then `ratio: shards-pread / litdata warm images/s` (mean over readers).
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

import numpy as np

BATCH = 16


def _memory(pid: int = 0) -> dict:
    """anon, file-mapped and proportional (PSS) resident bytes of a process (default: this one)."""
    pid = pid or os.getpid()
    status = dict(l.split(":", 1) for l in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in l)
    rollup = dict(l.split(":", 1) for l in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:] if ":" in l)
    kb = lambda d, k: int(d[k].split()[0]) * 1024 if k in d else 0
    return {"anon": kb(status, "RssAnon"), "file": kb(status, "RssFile"), "pss": kb(rollup, "Pss")}


def _drop_page_cache() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


# --- readers (each runs in a process of its own, as a trial would) --------------------------------------
def read_pread(where: Path, rows: np.ndarray):
    import pickle
    images = pickle.loads((where / "set.pkl").read_bytes())
    for b in range(0, len(rows), BATCH):
        yield images.read_rows(rows[b:b + BATCH])


def read_mmap(where: Path, rows: np.ndarray):
    import pickle
    images = pickle.loads((where / "set.pkl").read_bytes())
    maps = [np.load(images.path(i), mmap_mode="r") for i in range(len(images.shards))]
    for b in range(0, len(rows), BATCH):
        base = rows[b:b + BATCH]
        shard = np.searchsorted(images.starts, base, side="right") - 1
        yield np.stack([maps[s][r - images.starts[s]] for s, r in zip(shard, base)])


def read_litdata(where: Path, rows: np.ndarray):
    from litdata import StreamingDataset
    ds = StreamingDataset(str(where / "litdata"))
    for b in range(0, len(rows), BATCH):
        yield np.stack([ds[int(i)]["image"] for i in rows[b:b + BATCH]])


READERS = {"shards-pread": read_pread, "shards-mmap": read_mmap, "litdata": read_litdata}


def reader_main(kind: str, where: Path, n: int, batches: int, seed: int) -> None:
    rows = np.random.default_rng(seed).integers(0, n, batches * BATCH)
    it = READERS[kind](where, rows)
    next(it)                                   # opening the set is not reading it
    t0 = time.perf_counter()
    count = BATCH
    for _ in range(batches - 1):
        count += len(next(it))
    seconds = time.perf_counter() - t0
    # measured while the reader still holds what it opened (its maps, its chunks), as a trial does
    print(json.dumps({"images_per_s": count / seconds, **_memory()}))


# --- writers ---------------------------------------------------------------------------------------------
def _item(i: int, pickled: str):
    import pickle
    images = pickle.loads(Path(pickled).read_bytes())
    return {"image": images[int(i)]}


def write_litdata(where: Path, n: int) -> float:
    from functools import partial
    import litdata
    t0 = time.perf_counter()
    litdata.optimize(fn=partial(_item, pickled=str(where / "set.pkl")), inputs=list(range(n)),
                     output_dir=str(where / "litdata"), chunk_bytes="64MB", num_workers=2, mode="overwrite")
    return time.perf_counter() - t0


def _disk(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run_readers(kind: str, where: Path, n: int, batches: int, readers: int) -> list:
    procs = [subprocess.Popen([sys.executable, __file__, "--read", kind, "--where", str(where), "--n", str(n),
                               "--batches", str(batches), "--seed", str(k)], stdout=subprocess.PIPE, text=True)
             for k in range(readers)]
    out = []
    for p in procs:
        text, _ = p.communicate()
        out.append(json.loads(text.strip().splitlines()[-1]))
    return out


def ray_data(images, n: int, batches: int, readers: int) -> dict:
    """Ray Data's random access in this process: the set goes into Ray's object store and serving actors."""
    import ray
    ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        t0 = time.perf_counter()
        ds = ray.data.from_items([{"id": i, "image": images[i]} for i in range(n)])
        rad = ds.to_random_access_dataset("id", num_workers=readers)
        build = time.perf_counter() - t0
        rows = np.random.default_rng(0).integers(0, n, batches * BATCH)
        t0 = time.perf_counter()
        for b in range(0, len(rows), BATCH):
            rad.multiget([int(i) for i in rows[b:b + BATCH]])
        speed = len(rows) / (time.perf_counter() - t0)
        return {"build_s": build, "images_per_s": speed, "ray_pss": _ray_pss()}
    finally:
        ray.shutdown()


def _ray_pss() -> int:
    """PSS of this machine's Ray worker processes (the serving actors and the object store they map)."""
    total = 0
    for d in Path("/proc").glob("[0-9]*"):
        try:
            if (d / "cmdline").read_bytes().startswith(b"ray::"):
                total += _memory(int(d.name))["pss"]
        except (OSError, ValueError):
            pass
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data")
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--batches", type=int, default=150)
    ap.add_argument("--readers", type=int, default=2)
    ap.add_argument("--read", help=argparse.SUPPRESS)
    ap.add_argument("--where", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.read:
        reader_main(args.read, args.where, args.n, args.batches, args.seed)
        return

    import pickle
    from dfsweep.config import config_from_dict
    from dfsweep.data import load_labelled
    where = Path(tempfile.mkdtemp(prefix="dfsweep-storage-"))
    cfg = config_from_dict({"data": {"train": args.data, "image_size": args.image_size,
                                     "cache_dir": str(where / "cache")}})
    t0 = time.perf_counter()
    images = load_labelled(cfg.data).images
    n = len(images)
    (where / "set.pkl").write_bytes(pickle.dumps(images))
    print(f"{n} images at {args.image_size} px ({images.nbytes / 2**30:.2f} GiB), {args.readers} readers at once, "
          f"{args.batches} batches of {BATCH} at random rows each; dfsweep's shards written in "
          f"{time.perf_counter() - t0:.1f}s ({_disk(where / 'cache') / 2**20:.0f} MiB)")
    kinds = ["shards-pread", "shards-mmap"]
    try:
        print(f"litdata: written in {write_litdata(where, n):.1f}s ({_disk(where / 'litdata') / 2**20:.0f} MiB)")
        kinds.append("litdata")
    except ImportError:
        print("litdata: not installed, skipped")
    print("| candidate | pass | images/s per reader | anon MiB | file-mapped MiB | PSS MiB |")
    print("|---|---|---|---|---|---|")
    warm = {}
    for kind in kinds:
        for label in ("cold", "warm"):
            if label == "cold" and not _drop_page_cache():
                continue
            res = run_readers(kind, where, n, args.batches, args.readers)
            speed = float(np.mean([r["images_per_s"] for r in res]))
            mib = lambda k: "/".join(f"{r[k] / 2**20:.0f}" for r in res)
            print(f"| {kind} | {label} | {speed:.0f} | {mib('anon')} | {mib('file')} | {mib('pss')} |", flush=True)
            if label == "warm":
                warm[kind] = speed
    rd = ray_data(images, n, args.batches, args.readers)
    print(f"| ray-data | warm | {rd['images_per_s']:.0f} (one reader) | Ray's workers: {rd['ray_pss'] / 2**20:.0f} "
          f"MiB PSS in all (built in {rd['build_s']:.0f}s) | | |")
    if "litdata" in warm:
        print(f"ratio: {warm['shards-pread'] / warm['litdata']:.3f}")


if __name__ == "__main__":
    main()
