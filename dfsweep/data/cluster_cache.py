"""The decoded-image cache on a Ray cluster (or a local Ray): shards decoded by Ray tasks spread over the nodes,
and a node that lacks some (a cache folder of its own, `DFSWEEP_CACHE_DIR`) copying them from where they were built.

Where every node mounts the cache's path, the shards land in one folder and nothing is copied. Where a node has
its own folder, a trial there first copies what it lacks, one shard at a time through Ray's object store; a
shard whose builder is gone is decoded there from its files (which that node must then reach).
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Iterator, List, Sequence, Tuple

from ..errors import DfsweepError
from ..memory import gib
from .cache import ShardJob, build_shard
from .shards import (ShardMeta, ShardedImages, building, cache_root, read_meta, row_bytes, shard_dir,
                     write_shard_bytes)

__all__ = ["RayBuilder", "ensure_local"]

log = logging.getLogger("dfsweep.data")

_NO_SOURCE = "no-source"        # the task's node cannot read the shard's files


def _node_id() -> str:
    import ray
    return ray.get_runtime_context().get_node_id()


def _build_here(paths: List[str], size: int, root: str, key: str, on_bad_image: str, threads: int):
    """A Ray task: this node's copy of the shard (built here unless it is there already) -> its metadata."""
    here, node = cache_root(root), _node_id()
    meta = read_meta(here, size, key)
    if meta is None:
        if not os.path.exists(paths[0]):
            return _NO_SOURCE
        meta = build_shard([Path(p) for p in paths], size, here, key, on_bad_image, threads, node=node)
    return ShardMeta(meta.key, meta.files, meta.bad, meta.digest, node)     # this node has it now


def _placement(n_jobs: int) -> Tuple[List[str], int]:
    """(a node for each job: the nodes with CPUs in turn, each as often as it has CPUs; threads per task: one
    CPU per shard when there are shards enough to fill the cluster, more for each of a few, up to the smallest
    node's CPUs). Placed by hand: Ray's SPREAD keeps short tasks on the driver's node while it has a free CPU."""
    import ray
    cpus = {n["NodeID"]: int(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n.get("Alive")}
    cpus = {node: c for node, c in cpus.items() if c > 0}
    if not cpus:
        return [], 1
    turns = [node for k in range(max(cpus.values())) for node, c in sorted(cpus.items()) if c > k]
    threads = int(max(1, min(sum(cpus.values()) // max(n_jobs, 1), min(cpus.values()))))
    return [turns[i % len(turns)] for i in range(n_jobs)], threads


class RayBuilder:
    """One Ray task per shard, the nodes taking shards in turn by their CPUs; each writes into its node's cache.
    A shard whose files a node cannot read is built again on the driver's node."""

    def build(self, jobs: Sequence[ShardJob], paths, size: int, root: Path, on_bad_image: str,
              tick) -> Iterator[ShardMeta]:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
        nodes, threads = _placement(len(jobs))
        task = ray.remote(num_cpus=threads, max_retries=2)(_build_here)
        home = None

        def on(node: str):      # soft: a node gone meanwhile leaves its shards to the others
            return task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=True))

        def submit(job: ShardJob, where):
            return where.remote([str(p) for p in paths[job.start:job.stop]], size, str(root), job.key, on_bad_image,
                                threads)

        pending = {submit(job, on(node) if node else task): job for job, node in zip(jobs, nodes or [None] * len(jobs))}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(done[0])
            try:
                meta = ray.get(done[0])
            except ray.exceptions.RayTaskError as e:   # e.g. a node's cache disk full: one line naming it
                cause = e.cause if isinstance(e.cause, BaseException) else e
                raise DfsweepError(f"decoding {paths[job.start]} and the {job.stop - job.start - 1} files after it "
                                   f"on a Ray node failed: {type(cause).__name__}: "
                                   f"{' '.join(str(cause).split())[:300]}") from None
            if meta == _NO_SOURCE:
                if home is None:
                    home = task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(_node_id(), soft=False))
                pending[submit(job, home)] = job
                continue
            tick(job.stop - job.start)
            yield meta


def _read_here(root: str, size: int, key: str) -> Tuple[bytes, bytes]:
    """A Ray task on the shard's builder: its two files as bytes."""
    folder = shard_dir(cache_root(root), size)
    return (folder / f"{key}.json").read_bytes(), (folder / f"{key}.npy").read_bytes()


def ensure_local(images) -> None:
    """Every shard of `images` (a set in the cache; nothing to do for one in memory) in this node's cache:
    copied from the node that built it, else decoded here."""
    if not isinstance(images, ShardedImages):
        return
    missing = images.missing()
    if not missing:
        return
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    here = images.local_root()
    alive = {n["NodeID"] for n in ray.nodes() if n.get("Alive")}
    reader = ray.remote(num_cpus=0)(_read_here)
    need = sum(images.shards[i].rows for i in missing) * row_bytes(images.size)
    log.info("copying %d shard(s) of decoded images (%s) into this node's cache %s", len(missing), gib(need), here)
    t0 = time.perf_counter()
    for i in missing:
        shard = images.shards[i]
        with building(here, images.size, shard.key):
            if images.path(i).is_file():
                continue                          # another trial of this node copied it meanwhile
            if shard.node in alive:
                where = NodeAffinitySchedulingStrategy(shard.node, soft=False)
                meta, npy = ray.get(reader.options(scheduling_strategy=where).remote(images.root, images.size,
                                                                                     shard.key))
                write_shard_bytes(here, images.size, shard.key, meta, npy)
            elif images.sources is not None:
                files = [Path(p) for p in images.sources[i].split("\n")]
                built = build_shard(files, images.size, here, shard.key, "skip")
                if built.rows != shard.rows:
                    raise DfsweepError(f"decoded-image shard {shard.key}: built here with {built.rows} images, "
                                       f"the driver's has {shard.rows} (did the files change?)")
            else:
                raise DfsweepError(f"decoded-image shard {shard.key} is not in {here} and its node is gone")
    log.info("copied %d shard(s) in %.1f s", len(missing), time.perf_counter() - t0)
