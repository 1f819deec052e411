import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from dfsweep.config import config_from_dict
from dfsweep.errors import DfsweepError
from dfsweep.finalize import finalize_config, submission_frame
from tinydata import write_tiny_set

EXE = str(Path(sys.executable).parent / "dfsweep")


def test_submission_frame_columns_and_labels():
    cfg = config_from_dict({"submission": {"id_column": "image", "label_column": "is_fake", "fake_label": "fake",
                                           "real_label": "real", "probability_column": "p"}})
    df = submission_frame(["a", "b", "c"], np.array([0.2, 0.5, 0.9]), 0.5, cfg)
    assert list(df.columns) == ["image", "is_fake", "p"]
    assert list(df["is_fake"]) == ["real", "fake", "fake"]
    df = submission_frame(["a", "b"], np.array([0.2, 0.9]), 0.5, config_from_dict({}))
    assert list(df.columns) == ["id", "label"] and list(df["label"]) == ["0", "1"]


def test_finalize_needs_a_best_trial_and_a_test_folder(tmp_path):
    with pytest.raises(DfsweepError, match="no best.yaml"):
        finalize_config(tmp_path, [], None, None)
    (tmp_path / "best.yaml").write_text(yaml.safe_dump({"train": {"epochs": 2}}))
    with pytest.raises(DfsweepError, match="no test folder"):
        finalize_config(tmp_path, [], None, None)
    with pytest.raises(DfsweepError, match="finalize.epoks: unknown key"):
        finalize_config(tmp_path, ["finalize.epoks=3"], None, "x")


def test_finalize_trains_at_its_own_fidelity(tmp_path):
    """A sweep searched at 128 px on a small set; finalize.data/image_size train the winner on more, larger
    images. --data and --set data.image_size still win."""
    best = {"data": {"train": "small", "image_size": 128},
            "finalize": {"data": "large", "image_size": 224}}
    (tmp_path / "best.yaml").write_text(yaml.safe_dump(best))
    cfg = finalize_config(tmp_path, [], None, "test")
    assert (cfg.data.train, cfg.data.image_size) == ("large", 224)
    cfg = finalize_config(tmp_path, ["data.image_size=160"], "other", "test")
    assert (cfg.data.train, cfg.data.image_size) == ("other", 160)
    # ... and at its own learning rate and schedule
    best["train"] = {"lr": 3e-4, "lr_schedule": "plateau"}
    best["finalize"].update({"lr": 1e-3, "lr_schedule": "onecycle"})
    (tmp_path / "best.yaml").write_text(yaml.safe_dump(best))
    cfg = finalize_config(tmp_path, [], None, "test")
    assert (cfg.train.lr, cfg.train.lr_schedule) == (1e-3, "onecycle")
    cfg = finalize_config(tmp_path, ["train.lr=5e-4"], None, "test")
    assert (cfg.train.lr, cfg.train.lr_schedule) == (5e-4, "onecycle")


@pytest.mark.slow
def test_sweep_then_finalize_evaluate_predict(tmp_path):
    data = write_tiny_set(tmp_path / "data", n_real=40, n_fake=12)
    test_dir = tmp_path / "test"
    test_dir.mkdir()
    rng = np.random.default_rng(5)
    for i in range(7):
        Image.fromarray(rng.integers(0, 255, (50, 60, 3), dtype=np.uint8)).save(test_dir / f"t{i:02d}.png")
    space = {
        "data": {"train": str(data), "test": str(test_dir), "image_size": 64, "cache_dir": str(tmp_path / "cache")},
        "model": {"name": "deepfakenet", "width": 0.25},
        "train": {"epochs": 1, "batch_size": 8, "lr": 1e-3},
        "sweep": {"confirm": {"top_k": 0}, "num_samples": 2, "max_concurrent_trials": 2, "metric": "auc", "scheduler": {"name": "fifo"}},
        "finalize": {"epochs": 2, "finetune_epochs": 1, "finetune_lr": 1e-12},
        "submission": {"probability_column": "probability"},
        "search": {"train.lr": {"float": [1e-3, 3e-3], "log": True}},
    }
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
    r = subprocess.run([EXE, "run", "space.yaml", "--name", "fin"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    r = subprocess.run([EXE, "finalize"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    out = tmp_path / "sweeps" / "fin" / "final"

    # checkpoints: weights_only, threshold carried from stage 1 to stage 2
    s1 = torch.load(out / "best_model.pth", weights_only=True)
    s2 = torch.load(out / "best_model_finetuned.pth", weights_only=True)
    assert s1["threshold"] == s2["threshold"] and 0 <= s1["threshold"] <= 1
    assert s1["config"]["train"]["epochs"] == 2 and s2["config"]["train"]["lr"] == 1e-12
    # stage 2 started from stage 1's weights: at lr 1e-12 they barely move
    for k, v in s1["state_dict"].items():
        if v.dtype.is_floating_point and "running" not in k:
            assert torch.allclose(v, s2["state_dict"][k], atol=1e-6), k

    # submission: one row per test image, ids = file stems, labels from the threshold
    sub = pd.read_csv(out / "submission.csv", dtype={"id": str})
    assert sorted(sub["id"]) == sorted(p.stem for p in test_dir.iterdir())
    assert list(sub.columns) == ["id", "label", "probability"]
    assert ((sub["probability"] >= s2["threshold"]).astype(int) == sub["label"]).all()
    assert (out / "pr_curve.png").stat().st_size > 1000 and (out / "confusion_matrix.png").stat().st_size > 1000

    # MLflow: a finalize run nested under the sweep's parent, with artifacts; a registered version
    from mlflow.tracking import MlflowClient
    state = json.loads((tmp_path / "sweeps" / "fin" / "state.json").read_text())
    client = MlflowClient(state["tracking_uri"])
    exp = client.get_experiment_by_name("fin")
    fin = client.search_runs([exp.experiment_id], filter_string="tags.`dfsweep.stage` = 'finalize'")
    assert len(fin) == 1 and fin[0].data.tags["mlflow.parentRunId"] == state["parent_run_id"]
    assert fin[0].info.status == "FINISHED"
    arts = {a.path for a in client.list_artifacts(fin[0].info.run_id)}
    assert {"model", "submission.csv", "pr_curve.png", "confusion_matrix.png"} <= arts
    assert len(client.get_metric_history(fin[0].info.run_id, "stage1_auc")) == 2
    versions = client.search_model_versions("name='fin'")
    assert len(versions) == 1 and float(versions[0].tags["threshold"]) == pytest.approx(s2["threshold"])

    # evaluate: one JSON object on one line with the documented fields
    r = subprocess.run([EXE, "evaluate", str(out / "best_model_finetuned.pth"), str(data), "--json"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1
    m = json.loads(lines[0])
    assert {"auc", "ap", "f1", "recall", "precision", "threshold", "confusion", "n"} <= set(m)
    assert set(m["confusion"]) == {"tn", "fp", "fn", "tp"} and sum(m["confusion"].values()) == m["n"] == 52

    # predict: files and folders
    r = subprocess.run([EXE, "predict", str(out / "best_model.pth"), str(test_dir), "--out", "p.csv"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    preds = pd.read_csv(tmp_path / "p.csv", dtype={"id": str})
    assert len(preds) == 7 and set(preds.columns) == {"id", "probability", "label"}

    # a recall floor instead of max F1: the threshold catches every validation fake
    r = subprocess.run([EXE, "finalize", "--set", "finalize.min_recall=1.0", "--set", "finalize.finetune_epochs=0",
                        "--out", "final-r"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    line = next(x for x in r.stdout.splitlines() if x.startswith("threshold "))
    assert "max precision at recall >= 1.0" in line and "recall 1.000" in line, line


@pytest.mark.slow
def test_finalize_killed_then_rerun_writes_a_complete_set(tmp_path):
    import os
    import signal
    data = write_tiny_set(tmp_path / "data", n_real=30, n_fake=10)
    test_dir = write_tiny_set(tmp_path / "t", n_real=4, n_fake=3, seed=9)
    space = {
        "data": {"train": str(data), "image_size": 64, "cache_dir": str(tmp_path / "cache")},
        "model": {"name": "deepfakenet", "width": 0.25},
        "train": {"epochs": 1, "batch_size": 8, "lr": 1e-3},
        "sweep": {"confirm": {"top_k": 0}, "num_samples": 1, "metric": "auc", "scheduler": {"name": "fifo"}},
        "finalize": {"epochs": 40, "finetune_epochs": 2, "register_model": False},
        "search": {"train.lr": {"float": [1e-3, 2e-3]}},
    }
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
    r = subprocess.run([EXE, "run", "space.yaml", "--name", "k"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    out = tmp_path / "sweeps" / "k" / "final"
    proc = subprocess.Popen([EXE, "finalize", "--test", str(test_dir / "real")], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    for line in proc.stdout:
        if "epoch 5/40" in line:
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "submission.csv").exists() and not (out / "best_model_finetuned.pth").exists()

    r = subprocess.run([EXE, "finalize", "--test", str(test_dir / "real"), "--set", "finalize.epochs=2"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    names = {p.name for p in out.iterdir()}
    assert {"best_model.pth", "best_model_finetuned.pth", "submission.csv", "finalize.json"} <= names
    assert not [n for n in names if n.endswith(".tmp")]
    sub = pd.read_csv(out / "submission.csv", dtype={"id": str})
    assert sorted(sub["id"]) == sorted(p.stem for p in (test_dir / "real").iterdir())
    torch.load(out / "best_model_finetuned.pth", weights_only=True)


@pytest.mark.slow
def test_artifact_options_searched_at_low_fidelity_winner_finalized_at_full(tmp_path):
    """The quality options end to end: a sweep over input stems, self-blending and JPEG/rescale, on half
    the data; finalize trains the winner on a larger set at a higher resolution."""
    small = write_tiny_set(tmp_path / "small", n_real=40, n_fake=12)
    large = write_tiny_set(tmp_path / "large", n_real=60, n_fake=20)
    space = {
        "data": {"train": str(small), "image_size": 64, "cache_dir": str(tmp_path / "cache")},
        "model": {"name": "deepfakenet", "width": 0.25},
        "train": {"epochs": 1, "batch_size": 8, "lr": 1e-3},
        "sweep": {"confirm": {"top_k": 0}, "num_samples": 3, "max_concurrent_trials": 2, "metric": "auc", "scheduler": {"name": "fifo"},
                  "data_fraction": 0.5, "seed": 1},
        "finalize": {"epochs": 1, "finetune_epochs": 1, "data": str(large), "image_size": 80},
        "search": {"model.input": {"choice": ["rgb", "rgb+npr", "srm"]},
                   "augment.self_blend_p": {"choice": [0.0, 0.5]},
                   "augment.jpeg_p": {"choice": [0.0, 0.5]},
                   "augment.rescale_p": {"choice": [0.0, 0.5]}},
    }
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
    test_dir = tmp_path / "test"
    test_dir.mkdir()
    rng = np.random.default_rng(2)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(test_dir / f"t{i}.png")
    r = subprocess.run([EXE, "run", "space.yaml", "--name", "q"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "sweep.data_fraction 0.5: trials use 26 images" in r.stdout
    board = pd.read_csv(tmp_path / "sweeps" / "q" / "leaderboard.csv")
    assert len(board) == 3 and (board["status"] == "FINISHED").all()
    assert set(board["param.model.input"]) <= {"rgb", "rgb+npr", "srm"}

    r = subprocess.run([EXE, "finalize", "q", "--test", str(test_dir)], cwd=tmp_path, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "80 training images" in r.stdout                      # the larger set, all of it
    s2 = torch.load(tmp_path / "sweeps" / "q" / "final" / "best_model_finetuned.pth", weights_only=True)
    assert s2["config"]["data"]["image_size"] == 80 and s2["config"]["data"]["train"] == str(large)
    best = yaml.safe_load((tmp_path / "sweeps" / "q" / "best.yaml").read_text())
    assert s2["config"]["model"].get("input", "rgb") == best["model"].get("input", "rgb")
    r = subprocess.run([EXE, "evaluate", str(tmp_path / "sweeps" / "q" / "final" / "best_model_finetuned.pth"),
                        str(large), "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["n"] == 80
