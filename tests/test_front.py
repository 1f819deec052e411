"""A multi-objective sweep's Pareto front: the member finalize.pick chooses, any trial by --trial, and one real
two-objective sweep end to end (a held-out domain and another validation set, Ray, Optuna, MLflow)."""
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dfsweep.config import SweepConfig, config_from_dict
from dfsweep.errors import DfsweepError
from dfsweep.finalize import finalize_config
from dfsweep.front import front_lines, pick_trial, trial_config_dict
from dfsweep.objective import Scoring
from tinydata import write_tiny_set

EXE = str(Path(sys.executable).parent / "dfsweep")


def _board():
    return pd.DataFrame([
        {"trial_id": "b", "role": "search", "pareto": True, "auc": 0.7, "auc@x": 0.6, "min(auc,auc@x)": 0.6},
        {"trial_id": "a", "role": "search", "pareto": True, "auc": 0.9, "auc@x": 0.5, "min(auc,auc@x)": 0.5},
        {"trial_id": "c", "role": "search", "pareto": False, "auc": 0.95, "auc@x": 0.62, "min(auc,auc@x)": 0.62},
    ])


def test_pick_takes_the_front_member_the_rule_prefers():
    objectives = ["auc", "auc@x"]
    assert pick_trial(_board(), Scoring.of(SweepConfig(objectives=objectives))) == "b"
    # a rule the sweep did not rank by, read from the leaderboard's columns; off-front rows never win
    by_auc = Scoring.of_spec({"sweep": {"objectives": objectives}, "finalize": {"pick": "auc"}})
    assert pick_trial(_board(), by_auc) == "a"
    weighted = Scoring.of_spec({"sweep": {"objectives": objectives},
                                "finalize": {"pick": {"mean": {"auc": 1, "auc@x": 3}}}})
    assert pick_trial(_board(), weighted) == "b"
    missing = Scoring.of_spec({"sweep": {"objectives": objectives}, "finalize": {"pick": "f1"}})
    with pytest.raises(DfsweepError, match="finalize.pick: the leaderboard has no f1 column"):
        pick_trial(_board(), missing)
    lines = front_lines(_board(), Scoring.of(SweepConfig(objectives=objectives)))
    assert lines[0] == "Pareto front over auc, auc@x: 2 of 3 trials" and "chooses b" in lines[-1]


def _sweep_dir(tmp_path):
    d = tmp_path / "sweeps" / "s"
    d.mkdir(parents=True)
    spec = {"data": {"val_sets": {"x": "x"}, "test": "t"}, "train": {"lr": 1e-3},
            "sweep": {"objectives": ["auc", "auc@x"]},
            "search": {"train.lr": {"float": [1e-4, 1e-2]}, "augment.preset": {"choice": ["seed", "none"]}}}
    (d / "sweep.yaml").write_text(yaml.safe_dump(spec))
    best = config_from_dict({k: v for k, v in spec.items() if k != "search"}).replace({"train.lr": 0.004})
    (d / "best.yaml").write_text(yaml.safe_dump(best.to_dict()))
    (d / "trials.yaml").write_text(yaml.safe_dump({"a": {"train.lr": 0.002, "augment.preset": "none"},
                                                   "b": {"train.lr": 0.003, "augment.preset": "seed"},
                                                   "c": {"train.lr": 0.005, "augment.preset": "seed"}}))
    _board().to_csv(d / "leaderboard.csv", index=False)
    return d


def test_finalize_trains_the_picked_member_or_the_trial_named(tmp_path):
    d = _sweep_dir(tmp_path)
    assert trial_config_dict(d, "a")["train"]["lr"] == 0.002
    assert finalize_config(d, [], None, None).train.lr == 0.003                        # b: the pick
    assert finalize_config(d, ["finalize.pick=auc"], None, None).train.lr == 0.002      # a: the rule changed
    cfg = finalize_config(d, ["train.epochs=3"], None, None, trial="c")
    assert (cfg.train.lr, cfg.augment.preset, cfg.train.epochs) == (0.005, "seed", 3)
    with pytest.raises(DfsweepError, match=r"--trial zz: not a search trial of s \(trials: a, b, c\)"):
        finalize_config(d, [], None, None, trial="zz")


@pytest.mark.slow
def test_a_two_objective_sweep_with_a_held_out_domain_end_to_end(tmp_path):
    """Two training folders, one held out (leave one domain out), another labelled set beside them, and the
    objectives [auc, auc@other]: the front is marked, finalize trains the picked member and any named one."""
    a = write_tiny_set(tmp_path / "data" / "swaps", 40, 12)
    b = write_tiny_set(tmp_path / "data" / "edits", 16, 8, seed=4)
    other = write_tiny_set(tmp_path / "data" / "other", 20, 10, seed=7)
    space = {
        "data": {"train": [str(a), str(b)], "image_size": 64, "cache_dir": str(tmp_path / "cache"),
                 "val_sets": {"other": str(other)}, "test": str(other / "real")},
        "model": {"name": "deepfakenet", "width": 0.25},
        "train": {"epochs": 2, "batch_size": 8, "lr": 1e-3},
        "sweep": {"objectives": ["auc", "auc@other"], "validation": "leave_one_domain_out", "num_samples": 4,
                  "max_concurrent_trials": 2, "seed": 3, "scheduler": {"name": "asha", "grace_period": 1},
                  "confirm": {"top_k": 0}},
        "finalize": {"epochs": 1, "finetune_epochs": 1},
        "search": {"train.lr": {"float": [1e-4, 3e-3], "log": True}, "augment.preset": {"choice": ["seed", "none"]}},
    }
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
    r = subprocess.run([EXE, "run", "space.yaml", "--name", "mo"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "held-out domain edits" in r.stdout and "auc@other" in r.stdout and "is illegal" not in r.stdout
    assert "Pareto front over auc, auc@other" in r.stdout
    sweep = tmp_path / "sweeps" / "mo"
    board = pd.read_csv(sweep / "leaderboard.csv", dtype={"trial_id": str})
    assert len(board) == 4 and {"auc@edits", "auc@other", "auc_lo@other", "pareto"} <= set(board.columns)
    # the marking is the front of the rows' own values
    from dfsweep.objective import pareto_front
    assert list(board["pareto"]) == pareto_front(board[["auc", "auc@other"]].values.tolist())
    assert board["pareto"].iloc[0] and (sweep / "analysis" / "pareto_front.png").is_file()
    # Optuna ran a two-objective study and was told the values the leaderboard shows
    import optuna
    study = optuna.load_study(study_name="mo", storage=f"sqlite:///{sweep / 'optuna.db'}")
    assert len(study.directions) == 2
    told = sorted(tuple(round(v, 6) for v in t.values) for t in study.trials if t.values)
    shown = sorted((round(x, 6), round(y, 6)) for x, y in board[["auc", "auc@other"]].values if x == x and y == y)
    assert told == shown
    # MLflow: every trial's scores on both sets, under names MLflow accepts
    from mlflow.tracking import MlflowClient
    client = MlflowClient(f"sqlite:///{tmp_path / 'sweeps' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("mo")
    children = [x for x in client.search_runs([exp.experiment_id]) if "mlflow.parentRunId" in x.data.tags]
    assert len(children) == 4
    for c in children:
        assert {"auc_at_other", "auc_at_edits", "auc_lo_at_other", "objective_0", "objective_1"} <= set(c.data.metrics)
    # finalize: the picked member, then a named off-front trial
    picked = board.iloc[0]["trial_id"]
    r = subprocess.run([EXE, "finalize", "mo"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"trial {picked}" in r.stdout and "auc@other" in r.stdout and "auc@edits" in r.stdout
    other_trial = board.iloc[-1]["trial_id"]
    r = subprocess.run([EXE, "finalize", "mo", "--trial", other_trial, "--out", "final-other"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = yaml.safe_load((tmp_path / "final-other" / "finalize.json").read_text())
    assert summary["trial"] == other_trial
    r = subprocess.run([EXE, "finalize", "mo", "--trial", "nope"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "not a search trial" in r.stderr
