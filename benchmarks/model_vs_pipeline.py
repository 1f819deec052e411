"""The model's own training throughput vs a trial's real training throughput, side by side in one run.

    python benchmarks/model_vs_pipeline.py [--data ../shared/data/dfdc-faces/train] [--image-size 128]
                                           [--model deepfakenet] [--batch 16] [--threads 2] [--rounds 20]
                                           [--round-steps 40] [--preset seed] [--num-workers 0] [--no-amp]
                                           [--compile MODE]

* model: forward + loss + backward + AdamW step on random tensors already on the device, normalised and
  channels_last, in the trial's precision (`train.amp`) — what the network alone costs;
* pipeline: `dfsweep.train.fit` for one epoch on the real faces (decoded cache, 50/50 sampler, batched
  augmentation, the same loss and optimiser), its `train_images_per_s` (validation excluded); each round's
  epoch is `--round-steps` batches drawn from a different random part of the training split;
* with `--compile MODE` (train.compile with that compile_mode, e.g. reduce-overhead: CUDA graphs on a
  GPU) both sides step through the same compiled model, compiled before the rounds;
* also the augmentation alone per batch: the batched pipeline vs torchvision v2 called per image (what a
  trial did before).

Each round measures both, back to back (which goes first alternates), so a round's two numbers see the
same machine; the ratio is the median over rounds of pipeline / model within a round. On a shared machine
whose speed drifts within seconds (seen here: the same model step at 246–367 img/s across one run, and
33 vs 41 ms from one second to the next), short rounds compare close neighbours (a round of 40 steps is
~2 s per side here), where the best round of each side (also printed) pairs two different moments.
The last line is `ratio: median of pipeline / model` (1.0 = the data path costs nothing).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from dfsweep.augment import Augmenter
from dfsweep.batches import batch_generator
from dfsweep.config import config_from_dict
from dfsweep.data import load_labelled, split_indices
from dfsweep.losses import build_loss
from dfsweep.runtime import configure_threads, pick_device
from dfsweep.train import build_model, build_optimizer, compile_step, fit, images_to_tensor, train_autocast


def model_throughput(cfg, device, steps: int) -> float:
    model = build_model(cfg, device)
    model.train()
    step_model, begin_step = compile_step(model, cfg.train, device)   # the trial's: plain unless --compile
    crit = build_loss(cfg.loss, 5, 1).to(device)
    opt = build_optimizer(cfg, model)          # the trial's optimiser (fused AdamW)
    n, s = cfg.train.batch_size, cfg.data.image_size
    x = torch.randn(n, 3, s, s, device=device).contiguous(memory_format=torch.channels_last)
    y = (torch.arange(n, device=device) % 2).float()

    def step():
        begin_step()
        with train_autocast(cfg, device):      # the trial's precision: bf16 on CPUs with AMX, CUDA AMP
            logits = step_model(x)
        loss = crit(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    for _ in range(3):
        step()
    total = torch.zeros((), device=device)
    t0 = time.perf_counter()
    for _ in range(steps):
        total += step()
    total.item()                               # one read at the end, as a trial reads its epoch's loss
    return steps * n / (time.perf_counter() - t0)


def pipeline_throughput(cfg, data, train_idx) -> float:
    """One epoch of `fit` over `train_idx` (rows of the whole decoded set, which stays the shared array)."""
    result = fit(cfg, data, train_idx=train_idx, val_idx=[])
    return result.history[-1]["train_images_per_s"]


def augment_ms(cfg, images: torch.Tensor, reps: int = 20) -> tuple[float, float]:
    """ms per batch: batched augmentation vs torchvision v2 per image (crop, flip, jitter, blur)."""
    from torchvision.transforms import v2
    a = cfg.augment
    s = cfg.data.image_size
    per_image = v2.Compose([
        v2.RandomResizedCrop(s, scale=(a.crop_scale_min, 1.0), antialias=True), v2.RandomHorizontalFlip(a.flip_p),
        v2.RandomApply([v2.ColorJitter(a.brightness, a.contrast, a.saturation, a.hue)], p=a.jitter_p),
        v2.RandomApply([v2.GaussianBlur(5, (0.1, a.blur_sigma_max))], p=a.blur_p),
        v2.ToDtype(torch.float32, scale=True), v2.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    ])
    batched = Augmenter(a, channels_last=cfg.train.channels_last)
    n = cfg.train.batch_size
    labels = torch.zeros(n)
    times = {"batched": [], "v2": []}
    # as a trial: the parameters of all the batches planned in one pass (its cost shared among them), each
    # batch's boxes read from the whole set
    t0 = time.perf_counter()
    plan = batched.plan([batch_generator(0, 1, r) for r in range(reps)], n, images.shape[-2:], images.device)
    plan_s = (time.perf_counter() - t0) / reps
    for r in range(reps):
        rows = torch.arange(r * n, (r + 1) * n)
        t0 = time.perf_counter()
        batched(images, labels, plan[r], rows=rows)
        times["batched"].append(time.perf_counter() - t0 + plan_s)
        t0 = time.perf_counter()
        torch.stack([per_image(images[i]) for i in rows.tolist()])
        times["v2"].append(time.perf_counter() - t0)
    return 1000 * float(np.median(times["batched"])), 1000 * float(np.median(times["v2"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/dfdc-faces/train")
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--model", default="deepfakenet")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--round-steps", type=int, default=40, help="training steps per side per round")
    ap.add_argument("--preset", default="seed")
    ap.add_argument("--num-workers", type=int, default=0, help="train.num_workers for the pipeline")
    ap.add_argument("--no-amp", action="store_true", help="train.amp=false: float32 on both sides")
    ap.add_argument("--compile", metavar="MODE", default=None,
                    help="train.compile with this train.compile_mode on both sides (default, reduce-overhead, ...)")
    args = ap.parse_args()

    cfg = config_from_dict({
        "data": {"train": args.data, "image_size": args.image_size},
        "model": {"name": args.model},
        "augment": {"preset": args.preset},
        "train": {"epochs": 1, "batch_size": args.batch, "threads": args.threads, "seed": 42,
                  "num_workers": args.num_workers, "amp": not args.no_amp,
                  "compile": args.compile is not None, "compile_mode": args.compile or "default"},
    })
    configure_threads(args.threads)
    device = pick_device(cfg.train.device)
    t0 = time.perf_counter()
    data = load_labelled(cfg.data)
    print(f"data: {len(data)} images at {args.image_size} px, loaded in {time.perf_counter() - t0:.1f}s")
    train_idx, _ = split_indices(data.labels, data.groups, cfg.data.val_fraction, cfg.train.seed)
    steps = min(args.round_steps, len(train_idx) // args.batch)
    rng = np.random.default_rng(cfg.train.seed)
    round_rows = [rng.choice(train_idx, size=steps * args.batch, replace=False) for _ in range(args.rounds)]
    with train_autocast(cfg, device):
        precision = str(torch.get_autocast_dtype(device.type)) if torch.is_autocast_enabled(device.type) else "float32"
    print(f"model {args.model}, batch {args.batch}, threads {args.threads}, device {device}, {precision}, "
          f"{steps} steps per side per round, {args.rounds} rounds")

    b_ms, v2_ms = augment_ms(cfg, images_to_tensor(data.images))
    print(f"augmentation per batch: batched {b_ms:.1f} ms, torchvision v2 per image {v2_ms:.1f} ms "
          f"({v2_ms / b_ms:.1f}x)")

    measure = {"model": lambda r: model_throughput(cfg, device, steps),
               "pipeline": lambda r: pipeline_throughput(cfg, data, round_rows[r])}
    if args.compile:      # compiled once here: later models of the same shapes reuse the compiled code
        t0 = time.perf_counter()
        measure["model"](0), measure["pipeline"](0)
        print(f"compile ({args.compile}) and a first round: {time.perf_counter() - t0:.1f}s")
    model_runs, pipe_runs = [], []
    for r in range(args.rounds):
        order = ["model", "pipeline"] if r % 2 == 0 else ["pipeline", "model"]
        got = {name: measure[name](r) for name in order}
        model_runs.append(got["model"])
        pipe_runs.append(got["pipeline"])
        print(f"round {r + 1}: model {model_runs[-1]:.1f} img/s, pipeline {pipe_runs[-1]:.1f} img/s "
              f"({pipe_runs[-1] / model_runs[-1]:.3f})")
    ratios = np.array(pipe_runs) / np.array(model_runs)
    print(f"best round of each: model {max(model_runs):.1f} img/s, pipeline {max(pipe_runs):.1f} img/s "
          f"({max(pipe_runs) / max(model_runs):.3f})")
    print(f"per-round ratios: min {ratios.min():.3f}, median {np.median(ratios):.3f}, max {ratios.max():.3f}")
    print(f"ratio: {np.median(ratios):.3f}")


if __name__ == "__main__":
    main()
