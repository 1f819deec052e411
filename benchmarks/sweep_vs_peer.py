"""The same search run by dfsweep and by a peer written the way Ray Tune + Optuna users write it by hand.

    python benchmarks/sweep_vs_peer.py [--data ../shared/data/dfdc-faces/train] [--image-size 128]
                                       [--trials 6] [--epochs 4] [--grace EPOCHS] [--concurrent 2]
                                       [--cpus 1] [--gpu 0] [--compile MODE]

Both sides: the same space (lr, BCE/focal mix, focal gamma, dropout; see _common.SPACE), TPE seeded 42,
the same number of trials and epochs, ASHA (grace, reduction factor 2) on validation AUC, the same CPUs
(and GPU share) per trial, the same network (`dfsweep.models`' DeepFakeNet) and loss, batch 16,
AdamW + ReduceLROnPlateau, the recipe's augmentation, a 50/50 WeightedRandomSampler, 88/12 split.

On a GPU (`--gpu 0.25 --cpus 4`: each trial holds a quarter of the GPU and 4 CPUs) both sides train there
with bf16 autocast, and the peer's DataLoader decodes in `--cpus` worker processes with pinned memory, as a
GPU user writes it; dfsweep augments on the GPU.

* dfsweep: `dfsweep run <generated yaml>` as a user runs it (a cold decode cache, MLflow logging, checkpoints);
  with `--compile MODE` its trials set train.compile with that compile_mode (reduce-overhead: the step as
  CUDA graphs on a GPU), a dfsweep setting the hand-written peer does not have.
* peer: an ImageFolder-style Dataset that opens and decodes every JPEG with PIL in every trial and epoch,
  torchvision transforms per image, a DataLoader, a plain `Tuner` + `OptunaSearch` + `ASHAScheduler`.

Each side runs in its own process and is timed from start to exit. dfsweep's confirmation phase is off (the
peer has none). ASHA's grace period defaults to the epoch count, so both sides train exactly trials × epochs (with a shorter grace the two sides' metrics
differ, ASHA stops different trials and the walls measure different work). Prints both wall times, the
epochs each trained and the wall time per trained epoch, then `ratio: peer wall / dfsweep wall`.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import SPACE, dfsweep_yaml, run_dfsweep, trial_results  # benchmarks/ is sys.path[0] for a script


def peer_trainable(config, data_dir: str, image_size: int, epochs: int, seed: int, workers: int = 0):
    """One trial, written as Ray Tune tutorials write it."""
    import numpy as np
    import pandas as pd
    import torch
    from PIL import Image
    from ray import tune
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split
    from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler
    from torchvision.transforms import v2

    from dfsweep.losses import BceFocalLoss      # the same loss as dfsweep's trials
    from dfsweep.models import create_model      # the same network

    torch.manual_seed(seed)
    df = pd.read_csv(os.path.join(data_dir, "labels.csv"))
    paths = [os.path.join(data_dir, p) for p in df["image"]]
    labels = (df["label"].astype(str) == "fake").astype(int).to_numpy()
    tr, va = train_test_split(np.arange(len(df)), test_size=0.12, stratify=labels, random_state=seed)

    norm = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True),
            v2.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))]
    train_tf = v2.Compose([
        v2.Resize((image_size, image_size)),
        v2.RandomResizedCrop(image_size, scale=(0.8, 1.0)),
        v2.RandomHorizontalFlip(),
        v2.ColorJitter(0.2, 0.2, 0.2, 0.05),
        v2.RandomApply([v2.GaussianBlur(5, (0.1, 2.0))], p=0.3),
        *norm])
    eval_tf = v2.Compose([v2.Resize((image_size, image_size)), *norm])

    class Faces(Dataset):
        def __init__(self, idx, tf):
            self.idx, self.tf = idx, tf

        def __len__(self):
            return len(self.idx)

        def __getitem__(self, i):
            j = self.idx[i]
            img = Image.open(paths[j]).convert("RGB")
            return self.tf(img), torch.tensor(float(labels[j]))

    counts = np.bincount(labels[tr])
    sampler = WeightedRandomSampler(torch.as_tensor(1.0 / counts[labels[tr]]), len(tr), replacement=True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    loader_kw = {"num_workers": workers, "pin_memory": device.type == "cuda", "persistent_workers": workers > 0}
    train_loader = DataLoader(Faces(tr, train_tf), batch_size=16, sampler=sampler, drop_last=True, **loader_kw)
    val_loader = DataLoader(Faces(va, eval_tf), batch_size=64, **loader_kw)

    model = create_model("deepfakenet", dropout=config["dropout"]).to(device)
    criterion = BceFocalLoss(config["bce_weight"], config["gamma"], counts[0] / counts[1]).to(device)
    amp = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    opt = torch.optim.AdamW(model.parameters(), lr=config["lr"], weight_decay=1e-4)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=2)
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        model.train()
        for x, y in train_loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with amp:
                logits = model(x)
            loss = criterion(logits.float(), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        logits, ys = [], []
        with torch.no_grad():
            for x, y in val_loader:
                with amp:
                    logits.append(model(x.to(device)).float().reshape(-1).cpu())
                ys.append(y)
        logits, ys = torch.cat(logits), torch.cat(ys)
        val_loss = criterion(logits.to(device), ys.to(device)).item()
        plateau.step(val_loss)
        auc = roc_auc_score(ys.numpy(), torch.sigmoid(logits).numpy())
        tune.report({"auc": auc, "val_loss": val_loss, "epoch": epoch, "epoch_time_s": time.perf_counter() - t0})


def run_peer(args, storage: Path) -> None:
    import optuna
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    space = {k.split(".")[-1]: optuna.distributions.FloatDistribution(lo, hi, log=log)
             for k, (lo, hi, log) in SPACE.items()}
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    trainable = tune.with_resources(
        tune.with_parameters(peer_trainable, data_dir=str(Path(args.data).absolute()), image_size=args.image_size,
                             epochs=args.epochs, seed=42, workers=int(args.cpus) if args.gpu else 0),
        {"cpu": args.cpus, "gpu": args.gpu})
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            num_samples=args.trials, max_concurrent_trials=args.concurrent,
            search_alg=OptunaSearch(space, metric="auc", mode="max", sampler=optuna.samplers.TPESampler(seed=42)),
            scheduler=ASHAScheduler(metric="auc", mode="max", max_t=args.epochs, grace_period=args.grace,
                                    reduction_factor=2)),
        run_config=tune.RunConfig(storage_path=str(storage), name="peer", verbose=0))
    failed = [r for r in tuner.fit() if r.error]
    ray.shutdown()
    if failed:      # Tune carries on past failed trials; a benchmark must not time them as if they trained
        raise SystemExit(f"peer: {len(failed)} of {args.trials} trials failed; the first: {failed[0].error}")


def _summary(root: Path) -> tuple[int, int, float]:
    trials = trial_results(root)
    epochs = sum(len(t) for t in trials)
    best = max((r.get("auc", float("nan")) for t in trials for r in t), default=float("nan"))
    return len(trials), epochs, best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/dfdc-faces/train")
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--trials", type=int, default=6)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--grace", type=int, default=None,
                    help="ASHA grace period (default: --epochs, so no trial stops early and both sides train "
                         "the same number of epochs; with less, ASHA's choices differ between the sides)")
    ap.add_argument("--concurrent", type=int, default=2)
    ap.add_argument("--cpus", type=float, default=1, help="CPUs per trial, both sides")
    ap.add_argument("--gpu", type=float, default=0, help="GPU share per trial, both sides (0: CPU only)")
    ap.add_argument("--compile", metavar="MODE", default=None,
                    help="dfsweep side: train.compile with this train.compile_mode (e.g. reduce-overhead)")
    ap.add_argument("--side", choices=["both", "peer"], default="both", help=argparse.SUPPRESS)
    ap.add_argument("--storage", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.grace = args.grace or args.epochs
    if args.side == "peer":
        run_peer(args, Path(args.storage))
        return

    with tempfile.TemporaryDirectory(prefix="dfsweep-bench-") as tmp:
        tmp = Path(tmp)
        # the peer has no confirmation phase: dfsweep's (the top configurations and the recipe with new seeds)
        # would double its work, so the walls would measure different searches
        extra = {"sweep.confirm": {"top_k": 0}}
        if args.compile:
            extra.update({"train.compile": True, "train.compile_mode": args.compile})
        spec = dfsweep_yaml(tmp, data=args.data, image_size=args.image_size, trials=args.trials, epochs=args.epochs,
                            cpus=args.cpus, gpu=args.gpu, concurrent=args.concurrent, grace=args.grace, extra=extra)
        print(f"search: {args.trials} trials x <= {args.epochs} epochs, ASHA grace {args.grace}, "
              f"{args.concurrent} at a time, {args.cpus:g} CPU + {args.gpu:g} GPU each, {args.image_size} px, "
              f"data {args.data}" + (f"; dfsweep compiles its step ({args.compile})" if args.compile else ""))
        dfsweep_wall = run_dfsweep(spec, tmp)
        n, ep, best = _summary(tmp / "sweeps" / "bench")
        dfsweep_work = (n, ep)
        print(f"dfsweep: {dfsweep_wall:.1f} s wall, {n} trials, {ep} epochs trained ({dfsweep_wall / max(ep, 1):.1f} s "
              f"per epoch), best val auc {best:.3f}")

        t0 = time.perf_counter()
        cmd = [sys.executable, __file__, "--side", "peer", "--storage", str(tmp / "peer"), "--data", args.data,
               "--image-size", str(args.image_size), "--trials", str(args.trials), "--epochs", str(args.epochs),
               "--grace", str(args.grace), "--concurrent", str(args.concurrent), "--cpus", str(args.cpus),
               "--gpu", str(args.gpu)]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        peer_wall = time.perf_counter() - t0
        if proc.returncode != 0:
            print(proc.stdout[-3000:])
            raise SystemExit(f"peer failed with exit code {proc.returncode}")
        n, ep, best = _summary(tmp / "peer")
        if ep == 0:
            print(proc.stdout[-3000:])
            raise SystemExit("peer trained no epoch")
        print(f"peer:    {peer_wall:.1f} s wall, {n} trials, {ep} epochs trained ({peer_wall / max(ep, 1):.1f} s "
              f"per epoch), best val auc {best:.3f}")
        if (n, ep) != dfsweep_work:     # a ratio of walls is only a speed ratio when both did the same work
            raise SystemExit(f"the sides trained different work: dfsweep {dfsweep_work[0]} trials / "
                             f"{dfsweep_work[1]} epochs, peer {n} / {ep}")
        print(f"ratio: {peer_wall / dfsweep_wall:.3f}")


if __name__ == "__main__":
    main()
