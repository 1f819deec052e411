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
from dfsweep.cli import main
from dfsweep.finalize import OUTPUTS, finalize, finalize_config, submission_frame
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


def _fake_sweep(root: Path, epochs: int, finetune_epochs: int) -> Path:
    """A sweep folder as `dfsweep run` leaves it for finalize (best.yaml, sweep.yaml), without running Ray:
    tiny data, no MLflow state."""
    data = write_tiny_set(root / "data", n_real=30, n_fake=10)
    test_dir = write_tiny_set(root / "test", n_real=3, n_fake=2, seed=9) / "real"
    sweep = root / "sweeps" / "s"
    sweep.mkdir(parents=True)
    best = {"data": {"train": str(data), "test": str(test_dir), "image_size": 64, "cache_dir": str(root / "cache")},
            "model": {"name": "deepfakenet", "width": 0.25},
            "train": {"epochs": 1, "batch_size": 8, "lr": 1e-3, "threads": 1},
            "sweep": {"metric": "auc"},
            "finalize": {"epochs": epochs, "finetune_epochs": finetune_epochs, "register_model": False}}
    (sweep / "best.yaml").write_text(yaml.safe_dump(best))
    (sweep / "sweep.yaml").write_text(yaml.safe_dump(best))
    return sweep


class _Killed(BaseException):
    """Raised from finalize's progress output: the run stops there, as a kill right after that epoch would."""


def _crash_at(needle: str, lines: list):
    def echo(line: str) -> None:
        lines.append(line)
        if needle in line:
            raise _Killed(line)
    return echo


def _epochs_shown(lines, of: int) -> list:
    """Epoch numbers of the progress lines `epoch k/of`."""
    return [int(x.split()[1].split("/")[0]) for x in lines if x.strip().startswith("epoch ") and f"/{of} " in x]


def _assert_same_outputs(a: Path, b: Path) -> None:
    """Bitwise the same weights and threshold in both checkpoints, byte for byte the same submission."""
    for name in ("best_model.pth", "best_model_finetuned.pth"):
        x, y = (torch.load(d / name, weights_only=True) for d in (a, b))
        assert x["threshold"] == y["threshold"], name
        assert x["state_dict"].keys() == y["state_dict"].keys()
        for k, v in x["state_dict"].items():
            assert torch.equal(v, y["state_dict"][k]), (name, k)
    assert (a / "submission.csv").read_bytes() == (b / "submission.csv").read_bytes()


def test_finalize_resumes_a_crash_in_either_stage_as_if_uninterrupted(tmp_path):
    """Stopped after stage 1's epoch 2, then after stage 2's epoch 1: each --resume shows only the epochs
    left and the outputs equal an uninterrupted run's, weight for weight."""
    sweep = _fake_sweep(tmp_path, epochs=3, finetune_epochs=2)
    finalize(str(sweep), out=str(tmp_path / "ref"), echo=lambda _: None)
    out = tmp_path / "out"
    lines: list = []
    with pytest.raises(_Killed):
        finalize(str(sweep), out=str(out), echo=_crash_at("epoch 2/3", lines))
    assert [p.name for p in out.iterdir()] == [".resume"]              # no output yet, and none partial
    lines.clear()
    with pytest.raises(_Killed):
        finalize(str(sweep), out=str(out), resume=True, echo=_crash_at("epoch 1/2", lines))
    assert _epochs_shown(lines, 3) == [3] and "(resumed after epoch 2/3)" in "\n".join(lines)
    assert sorted(p.name for p in out.iterdir()) == [".resume", "best_model.pth"]
    lines.clear()
    finalize(str(sweep), out=str(out), resume=True, echo=lines.append)
    assert _epochs_shown(lines, 3) == [] and _epochs_shown(lines, 2) == [2]
    _assert_same_outputs(tmp_path / "ref", out)
    assert not (out / ".resume").exists()
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS + ("submission.csv",))


def test_finalize_resume_refuses_what_it_cannot_continue(tmp_path, capsys):
    """One line and exit 2 for: --resume with nothing to resume, a plain run over an unfinished one, --resume
    with another seed, epoch count or training data. --restart starts over; the threshold rule may change."""
    sweep = _fake_sweep(tmp_path, epochs=2, finetune_epochs=1)
    out = tmp_path / "out"
    args = ["finalize", str(sweep), "--out", str(out)]

    def refused(*extra: str, data_read: bool = False) -> str:
        capsys.readouterr()
        assert main(args + list(extra)) == 2
        err = capsys.readouterr().err.strip().splitlines()
        errors = [x for x in err if x.startswith("dfsweep:")]
        assert errors == err[-1:] and (data_read or len(err) == 1), err     # only decoding logs come first
        return err[-1]

    assert "--resume: nothing to resume in" in refused("--resume")
    with pytest.raises(_Killed):
        finalize(str(sweep), out=str(out), echo=_crash_at("epoch 1/2", []))
    assert "holds an unfinished finalize: add --resume" in refused()
    assert "another config: train.seed 42 -> 7;" in refused("--resume", "--set", "train.seed=7")
    assert "finalize.epochs 2 -> 3" in refused("--resume", "--set", "finalize.epochs=3")
    img = next((tmp_path / "data" / "real").iterdir())
    Image.fromarray(np.zeros((64, 64, 3), dtype=np.uint8)).save(img)
    assert "the training data differ" in refused("--resume", data_read=True)
    with pytest.raises(SystemExit):
        main(args + ["--resume", "--restart"])
    with pytest.raises(_Killed):
        finalize(str(sweep), out=str(out), restart=True, echo=_crash_at("epoch 2/2", []))
    lines: list = []
    finalize(str(sweep), out=str(out), resume=True, sets=["finalize.min_recall=1.0"], echo=lines.append)
    assert any(x.startswith("threshold ") and "(max precision at recall >= 1.0)" in x for x in lines), lines
    assert "nothing to resume" in refused("--resume")


def _with_hidden_fakes(root: Path, every: int) -> Path:
    """Every `every`-th fake loses its square (a fake the model cannot see): max F1 then leaves such fakes out
    and a recall floor of 1 takes them in, so the two threshold rules disagree."""
    rng = np.random.default_rng(11)
    for path in sorted((root / "fake").iterdir())[::every]:
        Image.fromarray(rng.integers(60, 140, (64, 64, 3), dtype=np.uint8)).save(path)
    return root


def _recomputed_threshold(model_file: Path, **rule) -> tuple:
    """(threshold, fakes in validation): choose_threshold on `model_file`'s own predictions for the stage-1
    validation split its config defines."""
    from dfsweep.data import load_labelled, split_indices
    from dfsweep.metrics import choose_threshold
    from dfsweep.predict import load_model
    from dfsweep.train import images_to_tensor, predict_scores
    lm = load_model(model_file)
    ds = load_labelled(lm.cfg.data)
    _, va = split_indices(ds.labels, ds.groups, lm.cfg.finalize.val_fraction, lm.cfg.train.seed)
    scores = predict_scores(lm.model, images_to_tensor(ds.images), lm.cfg, lm.device, index=torch.from_numpy(va))
    return choose_threshold(ds.labels[va], scores, **rule)["threshold"], int(ds.labels[va].sum())


@pytest.mark.slow
def test_sweep_then_finalize_evaluate_predict(tmp_path):
    data = _with_hidden_fakes(write_tiny_set(tmp_path / "data", n_real=40, n_fake=20), every=3)
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
        "finalize": {"epochs": 4, "finetune_epochs": 1, "finetune_lr": 1e-12, "val_fraction": 0.3},
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
    assert s1["config"]["train"]["epochs"] == 4 and s2["config"]["train"]["lr"] == 1e-12
    # the threshold is max F1 on the saved model's predictions for stage 1's validation split
    thr_f1, val_fakes = _recomputed_threshold(out / "best_model.pth")
    assert val_fakes >= 4 and s1["threshold"] == pytest.approx(thr_f1, abs=1e-5)
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
    assert len(client.get_metric_history(fin[0].info.run_id, "stage1_auc")) == 4
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
    assert set(m["confusion"]) == {"tn", "fp", "fn", "tp"} and sum(m["confusion"].values()) == m["n"] == 60
    assert m["auc_lo"] <= m["auc"] <= m["auc_hi"] and m["ap_lo"] <= m["ap"] <= m["ap_hi"]

    # predict: files and folders
    r = subprocess.run([EXE, "predict", str(out / "best_model.pth"), str(test_dir), "--out", "p.csv"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    preds = pd.read_csv(tmp_path / "p.csv", dtype={"id": str})
    assert len(preds) == 7 and set(preds.columns) == {"id", "probability", "label"}

    # a recall floor instead of max F1: the same stage 1, a threshold that catches every validation fake, and
    # (with hidden fakes in validation) not the max-F1 one
    r = subprocess.run([EXE, "finalize", "--set", "finalize.min_recall=1.0", "--set", "finalize.finetune_epochs=0",
                        "--out", "final-r"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    line = next(x for x in r.stdout.splitlines() if x.startswith("threshold "))
    assert "max precision at recall >= 1.0" in line and "recall 1.000" in line, line
    r1 = torch.load(tmp_path / "final-r" / "best_model.pth", weights_only=True)
    assert all(torch.equal(v, r1["state_dict"][k]) for k, v in s1["state_dict"].items())
    thr_r, _ = _recomputed_threshold(tmp_path / "final-r" / "best_model.pth", min_recall=1.0)
    assert r1["threshold"] == pytest.approx(thr_r, abs=1e-5) and abs(thr_r - thr_f1) > 1e-4


# runs the CLI with torch.save patched to write half of the file named by argv[1] (its argv[2]-th write, to
# that name or a hidden temporary one beside it), then SIGKILL itself: a kill -9 that lands mid-write, every time
_KILL_MID_WRITE = """
import io, os, signal, sys, torch
target, nth = sys.argv[1], int(sys.argv[2])
real, seen = torch.save, []
def save(obj, f, *a, **k):
    name = os.readlink(f"/proc/self/fd/{f.fileno()}") if hasattr(f, "fileno") else ""
    if os.path.basename(name).lstrip(".").startswith(target):
        seen.append(name)
        if len(seen) == nth:
            buf = io.BytesIO()
            real(obj, buf, *a, **k)
            f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    return real(obj, f, *a, **k)
torch.save = save
from dfsweep.cli import main
sys.exit(main(sys.argv[3:]))
"""


def _outputs_whole(out: Path) -> set:
    """The names in `out` besides .resume/, after checking each is a known output and reads whole."""
    names = {p.name for p in out.iterdir()} - {".resume"}
    assert names <= set(OUTPUTS) | {"submission.csv"}, names          # no temporary or partial file
    for name in names:
        if name.endswith(".pth"):
            torch.load(out / name, weights_only=True)
        elif name == "submission.csv":
            assert len(pd.read_csv(out / name)) == 3
    return names


def _saved_epoch(out: Path, stage: int) -> int:
    return int(torch.load(out / ".resume" / f"stage{stage}.pt", weights_only=True)["epoch"])


@pytest.mark.slow
def test_finalize_killed_then_rerun_writes_a_complete_set(tmp_path):
    """kill -9 in stage 1, then mid-write of stage 2's resume state, then mid-write of the fine-tuned model:
    the output folder only ever holds whole outputs, each --resume goes on from the last saved epoch, and the
    end result equals an uninterrupted run's, weight for weight."""
    import os
    import signal
    sweep = _fake_sweep(tmp_path, epochs=6, finetune_epochs=4)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cli = [EXE, "finalize", str(sweep), "--out"]
    r = subprocess.run(cli + ["ref"], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    out = tmp_path / "out"

    # 1. kill -9 from outside during stage 1
    proc = subprocess.Popen(cli + [str(out)], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True, env=env)
    for line in proc.stdout:
        if "epoch 1/6" in line:
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = _saved_epoch(out, 1)
    assert 1 <= saved < 6 and _outputs_whole(out) == set()

    # 2. --resume, killed halfway through writing stage 2's state after its epoch 2
    killer = [sys.executable, "-c", _KILL_MID_WRITE]
    r = subprocess.run(killer + ["stage2.pt", "2"] + cli[1:] + [str(out), "--resume"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == -signal.SIGKILL, r.stderr[-3000:]
    assert _epochs_shown(r.stdout.splitlines(), 6) == list(range(saved + 1, 7))    # not from epoch 1
    assert _outputs_whole(out) == {"best_model.pth"} and _saved_epoch(out, 2) == 1

    # 3. --resume, killed halfway through writing the fine-tuned model
    r = subprocess.run(killer + ["best_model_finetuned.pth", "1"] + cli[1:] + [str(out), "--resume"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == -signal.SIGKILL, r.stderr[-3000:]
    assert _epochs_shown(r.stdout.splitlines(), 6) == [] and _epochs_shown(r.stdout.splitlines(), 4) == [2, 3, 4]
    assert _outputs_whole(out) == {"best_model.pth"}

    # 4. --resume to the end: the same outputs as the uninterrupted run, and no resume state left
    r = subprocess.run(cli + [str(out), "--resume"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert _outputs_whole(out) == set(OUTPUTS) | {"submission.csv"} and not (out / ".resume").exists()
    _assert_same_outputs(tmp_path / "ref", out)


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
