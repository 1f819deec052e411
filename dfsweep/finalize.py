"""`dfsweep finalize`: best trial -> stage 1 -> threshold -> stage 2 -> artifacts + submission.csv.

out/ (default <sweep>/final/)
  best_model.pth            stage 1: the best config from scratch on a stratified, group-aware 88/12 split,
                            best epoch by the sweep's metric, with the threshold chosen on its validation
  best_model_finetuned.pth  stage 2: stage 1's weights fine-tuned on 100% of the data at a lower LR,
                            carrying stage 1's threshold
  submission.csv            one row per test image (written atomically)
  pr_curve.png, confusion_matrix.png, finalize.json
  .resume/                  while it runs: the per-epoch state `--resume` continues from (finalize_state.py);
                            every output is written whole there and renamed into place
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import pandas as pd

from .checkpoint import atomic_write_bytes, save_checkpoint
from .config import Config, apply_overrides, config_from_dict, flat_dict, read_yaml
from .data import images_to_tensor, load_unlabelled, split_indices
from .errors import DfsweepError
from .finalize_state import ResumeState, data_digest, training_config
from .front import pick_trial, trial_config_dict
from .objective import Scoring
from .metrics import choose_threshold
from .predict import write_csv
from .report import format_epoch
from .sweep import resolve_sweep_dir
from .train import FitResult, fit, predict_scores

__all__ = ["finalize", "finalize_config", "submission_frame", "OUTPUTS"]

# every file finalize writes besides the submission (whose name is submission.filename)
OUTPUTS = ("best_model.pth", "best_model_finetuned.pth", "pr_curve.png", "confusion_matrix.png", "finalize.json")


def finalize_config(sweep_dir: Path, sets: List[str], data: Optional[str], test: Optional[str],
                    trial: Optional[str] = None) -> Config:
    """best.yaml (the winner, with the sweep's finalize/submission sections) + --set/--data/--test. With
    `trial`, or in a multi-objective sweep, the configuration of that trial (or of the Pareto-front member
    `finalize.pick` chooses) instead."""
    return _config_and_trial(sweep_dir, sets, data, test, trial)[0]


def _config_and_trial(sweep_dir: Path, sets: List[str], data: Optional[str], test: Optional[str],
                      trial: Optional[str]) -> Tuple[Config, Optional[str]]:
    """finalize_config's config, and the trial it is (the one named, the front member picked, or None: best.yaml)."""
    best = sweep_dir / "best.yaml"
    if not best.is_file():
        raise DfsweepError(f"{sweep_dir}: no best.yaml (the sweep has no successful trial yet)")
    raw = read_yaml(best)
    raw.pop("search", None)
    extra = list(sets) + ([f"data.train={data}"] if data else []) + ([f"data.test={test}"] if test else [])
    try:
        cfg = config_from_dict(apply_overrides(raw, list(extra)))
        if trial is None and cfg.sweep.objectives:
            trial = _picked(sweep_dir, cfg)
        if trial is not None:
            cfg = config_from_dict(apply_overrides(trial_config_dict(sweep_dir, trial), list(extra)))
    except DfsweepError as e:
        raise DfsweepError(f"{best if trial is None else sweep_dir / 'trials.yaml'}: {e}") from None
    # multi-fidelity: the sweep may have searched on less data or smaller images than the winner trains on,
    # and the longer final run may want its own learning rate and schedule; --set/--data still win
    set_keys = {x.split("=", 1)[0].strip() for x in sets}
    fidelity = {}
    if cfg.finalize.data and not data:
        fidelity["data.train"] = cfg.finalize.data
    for key, value in (("data.image_size", cfg.finalize.image_size), ("train.lr", cfg.finalize.lr),
                       ("train.lr_schedule", cfg.finalize.lr_schedule)):
        if value is not None and key not in set_keys:
            fidelity[key] = value
    if fidelity:
        cfg = cfg.replace(fidelity)
    if not cfg.data.test:
        raise DfsweepError("no test folder: give --test PATH (or data.test in the sweep YAML)")
    return cfg, trial


def _picked(sweep_dir: Path, cfg: Config) -> str:
    """The Pareto-front member `finalize.pick` chooses from the sweep's leaderboard."""
    board_file = sweep_dir / "leaderboard.csv"
    if not board_file.is_file():
        raise DfsweepError(f"{sweep_dir}: no leaderboard.csv to pick a Pareto-front member from")
    picked = pick_trial(pd.read_csv(board_file, dtype={"trial_id": str}), Scoring.of(cfg.sweep, cfg.finalize))
    if picked is None:
        raise DfsweepError("finalize.pick: no front member has a value for it")
    return picked


def submission_frame(ids: List[str], probs: np.ndarray, threshold: float, cfg: Config) -> pd.DataFrame:
    s = cfg.submission
    labels = np.where(probs >= threshold, s.fake_label, s.real_label)
    df = pd.DataFrame({s.id_column: ids, s.label_column: labels})
    if s.probability_column:
        df[s.probability_column] = probs
    return df


def finalize(sweep: Optional[str] = None, *, data: Optional[str] = None, test: Optional[str] = None,
             out: Optional[str] = None, sets: List[str] = (), resume: bool = False, restart: bool = False,
             trial: Optional[str] = None, echo: Callable[[str], None] = print) -> Dict[str, Any]:
    """The whole chain; `resume` continues a killed run from its last finished epoch (same config and data,
    else refused), `restart` discards such a run's state. Outputs appear whole, one by one."""
    t0 = time.time()
    sweep_dir = resolve_sweep_dir(sweep)
    cfg, trial = _config_and_trial(sweep_dir, list(sets), data, test, trial)
    out_dir = Path(out) if out else sweep_dir / "final"
    run = ResumeState(out_dir)
    config = training_config(flat_dict(cfg.to_dict()))
    run.check(config, resume, restart)

    # 1. every input validated before any output: training data, test images
    from .run_data import load_run_data
    train_set, val_sets = load_run_data(cfg, lambda _: None)
    test_set = load_unlabelled(cfg.data.test, cfg.data)
    counts = train_set.class_counts()
    which = f"trial {trial}" if trial else "the best config"
    echo(f"finalize {sweep_dir.name}: {which}, {cfg.model.name}, {len(train_set)} training images ({counts[0]} real, "
         f"{counts[1]} fake), {len(test_set)} test images" + (f"; also scoring {', '.join(val_sets)} every stage-1 "
                                                              f"epoch" if val_sets else ""))
    run.begin(config, data_digest(train_set), resume)

    # 2. stage 1 and its threshold; its model replaces any earlier run's set in the folder
    cfg1, r1, thr = _stage1(cfg, train_set, val_sets, run, echo)
    run.discard([n for n in OUTPUTS + (cfg.submission.filename,) if n != "best_model.pth"])
    stage1 = run.publish("best_model.pth", lambda p: save_checkpoint(
        p, r1.best_state, cfg1.to_dict(), thr["threshold"], r1.best_metrics, stage=1, epoch=r1.best_epoch))

    # 3. stage 2: stage 1's weights on 100% of the data at the lower LR
    cfg2, state2, hist2 = _stage2(cfg1, train_set, r1, run, echo)
    stage2 = run.publish("best_model_finetuned.pth", lambda p: save_checkpoint(
        p, state2, cfg2.to_dict(), thr["threshold"], {"stage1": r1.best_metrics}, stage=2,
        finetune_epochs=cfg.finalize.finetune_epochs))

    # 4. predictions for the test images -> submission.csv
    sub, n_fake = _submission(cfg, stage2, test_set, thr["threshold"], run, echo)

    # 5. figures, summary, MLflow; the resume state goes last, once nothing is left to redo
    from .plots import confusion_png, pr_curve_png
    pr = run.publish("pr_curve.png", lambda p: pr_curve_png(r1.val_labels, r1.val_scores, thr["threshold"], p))
    cm = run.publish("confusion_matrix.png",
                     lambda p: confusion_png(r1.val_labels, r1.val_scores, thr["threshold"], p))
    summary = {"sweep": sweep_dir.name, "trial": trial, "model": cfg.model.name, "threshold": thr, "stage1_best_epoch": r1.best_epoch,
               "stage1_best": r1.best_metrics, "stage2_epochs": cfg.finalize.finetune_epochs,
               "test_images": len(test_set), "predicted_fake": n_fake, "resumed": resume, "wall_s": time.time() - t0}
    text = json.dumps(summary, indent=2, default=float).encode()
    summary_file = run.publish("finalize.json", lambda p: atomic_write_bytes(p, lambda fh: fh.write(text)))
    version = _track(sweep_dir, cfg, r1.history, hist2, thr, [stage1, stage2, sub, pr, cm, summary_file],
                     test_set.images[0], echo)
    summary["registered_version"] = version
    run.finish()
    echo(f"wrote {stage1}, {stage2}, {sub} in {time.time() - t0:.0f}s")
    return summary


def _stage1(cfg: Config, train_set, val_sets, run: ResumeState, echo) -> Tuple[Config, FitResult, Dict[str, float]]:
    """From scratch (or its saved state) on the split, best epoch by the sweep's metric (its pick rule in a
    multi-objective sweep), `val_sets` scored every epoch; then the threshold on the best epoch's validation
    predictions."""
    f, s = cfg.finalize, cfg.sweep
    scoring = Scoring.of(s, f)
    min_p = s.min_precision if scoring.needs_min_precision() else None
    cfg1 = cfg.replace({"train.epochs": f.epochs, "data.val_fraction": f.val_fraction})
    tr, va = split_indices(train_set.labels, train_set.groups, f.val_fraction, cfg.train.seed)
    saved = run.load_stage(1)
    echo(f"stage 1: {f.epochs} epochs on {len(tr)} images, validating on {len(va)}{_resumed(saved, f.epochs)}")
    r1 = fit(cfg1, train_set, train_idx=tr, val_idx=va, select=scoring, min_precision=min_p, resume=saved,
             on_epoch=_saving(run, 1, f.epochs, echo), val_sets=val_sets)
    thr = choose_threshold(r1.val_labels, r1.val_scores, f.min_precision, f.min_recall)
    rule = (f"max recall at precision >= {f.min_precision}" if f.min_precision else
            f"max precision at recall >= {f.min_recall}" if f.min_recall else "max F1, ties -> higher recall")
    echo(f"threshold {thr['threshold']:.4f} ({rule}): f1 {thr['f1']:.3f} recall {thr['recall']:.3f} "
         f"precision {thr['precision']:.3f} at epoch {r1.best_epoch}")
    return cfg1, r1, thr


def _stage2(cfg1: Config, train_set, r1: FitResult, run: ResumeState, echo):
    """(config, weights, history): stage 1's best weights fine-tuned on all the data (or kept as they are
    with finalize.finetune_epochs 0)."""
    f = cfg1.finalize
    cfg2 = cfg1.replace({"train.lr": f.finetune_lr, "train.epochs": max(f.finetune_epochs, 1)})
    if f.finetune_epochs == 0:
        return cfg2, r1.best_state, []
    saved = run.load_stage(2)
    echo(f"stage 2: {f.finetune_epochs} epochs on all {len(train_set)} images at lr {f.finetune_lr:g}"
         f"{_resumed(saved, f.finetune_epochs)}")
    r2 = fit(cfg2, train_set, train_idx=np.arange(len(train_set)), val_idx=[], init_state=r1.best_state,
             resume=saved, on_epoch=_saving(run, 2, f.finetune_epochs, echo))
    return cfg2, r2.best_state, r2.history


def _saving(run: ResumeState, stage: int, epochs: int, echo) -> Callable[[Dict[str, Any], Callable], None]:
    def on_epoch(metrics: Dict[str, Any], state_fn: Callable[[], Dict[str, Any]]) -> None:
        run.save_stage(stage, state_fn())      # kept before it is shown: a printed epoch is never redone
        echo("  " + format_epoch(metrics, epochs))
    return on_epoch


def _resumed(saved: Optional[Dict[str, Any]], epochs: int) -> str:
    if saved is None:
        return ""
    done = int(saved["epoch"])
    return " (all done before the interruption)" if done >= epochs else f" (resumed after epoch {done}/{epochs})"


def _submission(cfg: Config, model_file: Path, test_set, threshold: float, run: ResumeState, echo):
    from .predict import load_model
    lm = load_model(model_file)
    probs = predict_scores(lm.model, images_to_tensor(test_set.images), lm.cfg, lm.device,
                           tta_flip=cfg.finalize.tta_flip)
    frame = submission_frame(test_set.ids, probs, threshold, cfg)
    sub = run.publish(cfg.submission.filename, lambda p: write_csv(frame, p))
    n_fake = int((probs >= threshold).sum())
    echo(f"submission: {len(test_set)} rows, {n_fake} predicted fake -> {sub}")
    return sub, n_fake


def _track(sweep_dir: Path, cfg: Config, hist1, hist2, thr, files, example: np.ndarray, echo) -> Optional[int]:
    """The finalize run and the fine-tuned model as an MLflow model (files[1]; `example`: a test image)."""
    state_file = sweep_dir / "state.json"
    if not state_file.is_file():
        echo("mlflow: the sweep has no tracking state; finalize not logged")
        return None
    state = json.loads(state_file.read_text())
    import logging
    for noisy in ("mlflow", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from .tracking import FinalizeTracker
    name = state.get("experiment") or cfg.sweep.name or sweep_dir.name
    t = FinalizeTracker(state["tracking_uri"], name, state.get("parent_run_id"))
    try:
        t.log_params(flat_dict(cfg.to_dict()))
        t.log_curve(hist1, "stage1_")
        t.log_curve(hist2, "stage2_")
        t.log_metrics({f"threshold_{k}": v for k, v in thr.items()})
        for p in files:
            t.log_artifact(Path(p), "model" if p.suffix == ".pth" else None)
        from .serving import model_spec
        register = name if cfg.finalize.register_model else None
        with model_spec(files[1], example, thr["threshold"]) as spec:
            version = t.log_model(spec, register, {"threshold": thr["threshold"], "file": Path(files[1]).name})
        if version is not None:
            echo(f"mlflow: registered model {name!r} version {version} as models:/{name}@champion "
                 f"(threshold {thr['threshold']:.4f})")
        t.end("FINISHED")
        return version
    except BaseException:
        t.end("FAILED")
        raise
