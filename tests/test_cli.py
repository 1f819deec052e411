import subprocess
import sys

import pytest
import torch
from PIL import Image

from dfsweep.cli import main
from tinydata import write_config, write_tiny_set


def _run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_train_prints_epochs_and_saves_a_safe_checkpoint(tmp_path, tiny_config, capsys):
    out_dir = tmp_path / "out"
    code, out, err = _run(["train", str(tiny_config), "--set", "train.epochs=2", "--out", str(out_dir)], capsys)
    assert code == 0, err
    assert "epoch 1/2" in out and "epoch 2/2" in out and "auc" in out
    ckpt = torch.load(out_dir / "model.pth", weights_only=True)
    assert ckpt["config"]["train"]["epochs"] == 2 and 0 <= ckpt["threshold"] <= 1
    assert ckpt["state_dict"] and (out_dir / "history.csv").is_file() and (out_dir / "config.yaml").is_file()


def _one_error_line(code, err, needle):
    assert code == 2
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("dfsweep: error: ")
    assert needle in lines[0], lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize("case, needle", [
    ("missing", "not found"),
    ("empty_class", "class 'fake' has no images"),
    ("corrupt", "bad.png"),
    ("not_image", "notes.jpg"),
    ("unknown_label", "maybe"),
])
def test_bad_data_is_one_line_and_exit_2(tmp_path, case, needle, capsys):
    data = tmp_path / "d"
    if case != "missing":
        write_tiny_set(data, n_real=6, n_fake=3)
    if case == "empty_class":
        for f in (data / "fake").iterdir():
            f.unlink()
    elif case == "corrupt":
        good = (data / "fake" / "fake_000.png").read_bytes()
        (data / "fake" / "bad.png").write_bytes(good[: len(good) // 2])
    elif case == "not_image":
        (data / "real" / "notes.jpg").write_text("this is a text file, not a JPEG")
    elif case == "unknown_label":
        flat = tmp_path / "flat"
        flat.mkdir()
        rows = ["image,label"]
        for i, f in enumerate(sorted((data / "real").iterdir())):
            Image.open(f).save(flat / f.name)
            rows.append(f"{f.name},{'maybe' if i == 0 else 'real'}")
        (flat / "labels.csv").write_text("\n".join(rows) + "\n")
        data = flat
    cfg = write_config(tmp_path / "c.yaml", data, tmp_path / "cache")
    out_dir = tmp_path / "out"
    code, _, err = _run(["train", str(cfg), "--out", str(out_dir)], capsys)
    _one_error_line(code, err, needle)
    assert not out_dir.exists()


def test_bad_yaml_key_and_set_key(tmp_path, tiny_config, capsys):
    code, _, err = _run(["train", str(tiny_config), "--set", "train.epoch=3"], capsys)
    _one_error_line(code, err, "train.epoch: unknown key")
    code, _, err = _run(["train", str(tmp_path / "nope.yaml")], capsys)
    _one_error_line(code, err, "nope.yaml: config file not found")


def test_demo_data_through_python_m_dfsweep_exits_with_its_code_and_output_flushed(tmp_path):
    """The demo-data command writes a labelled set; `python -m dfsweep` (and the console script) leave with
    os._exit after main(), so the exit code, the streams (pipes: block-buffered) and the files must be intact."""
    cmd = [sys.executable, "-m", "dfsweep", "demo-data", str(tmp_path / "demo")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith(str(tmp_path / "demo")), r.stdout
    rows = (tmp_path / "demo" / "labels.csv").read_text().splitlines()
    assert len(rows) - 1 == len(list((tmp_path / "demo").glob("*.jpg"))) > 1000
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)    # the folder is not empty now
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [f"dfsweep: error: {tmp_path / 'demo'}: folder exists and is not empty"]


@pytest.mark.slow
def test_console_script_end_to_end_on_demo_data(tmp_path):
    """The installed `dfsweep` entry point, on the embedded demo data, in a fresh working directory."""
    import shutil
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    shutil.copytree(root / "search_spaces", tmp_path / "search_spaces")
    exe = Path(sys.executable).parent / "dfsweep"
    r = subprocess.run([str(exe), "train", "search_spaces/deepfakenet.yaml", "--set", "train.epochs=1",
                        "--set", "model.width=0.5"], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    assert "epoch 1/1" in r.stdout
    assert (tmp_path / "sweeps" / "train" / "deepfakenet" / "model.pth").is_file()
    assert (tmp_path / "sweeps" / "cache").is_dir()


@pytest.mark.parametrize("search, needle", [
    ({"train.lr": {"float": [1e-2, 1e-5]}}, "search.train.lr"),
    ({"train.lr": {"float": [1e-5, 1e-2]}, "model.nme": {"choice": ["x"]}}, "model.nme"),
    ({"model.name": {"choice": ["deepfakenet", "nope"]}}, "unknown model 'nope'"),
    ({"w": {"key": "model.width", "int": [8, 16], "when": {"model.name": "hrnett"}},
      "model.name": {"choice": ["deepfakenet", "hrnet"]}}, "has no choice 'hrnett'"),
])
def test_run_rejects_invalid_space_before_anything_starts(tmp_path, tiny_set, search, needle, capsys, monkeypatch):
    import yaml
    monkeypatch.chdir(tmp_path)
    cfg = write_config(tmp_path / "s.yaml", tiny_set, tmp_path / "cache")
    raw = yaml.safe_load(cfg.read_text())
    raw["search"] = search
    cfg.write_text(yaml.safe_dump(raw))
    code, _, err = _run(["run", str(cfg)], capsys)
    _one_error_line(code, err, needle)
    assert not (tmp_path / "sweeps").exists()


def test_run_unknown_set_key_and_missing_search(tmp_path, tiny_config, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(["run", str(tiny_config), "--set", "sweep.num_sampels=3"], capsys)
    _one_error_line(code, err, "sweep.num_sampels: unknown key")
    code, _, err = _run(["run", str(tiny_config)], capsys)
    _one_error_line(code, err, "no `search:` section")
    code, _, err = _run(["run", str(tiny_config), "--resume"], capsys)
    _one_error_line(code, err, "no sweep to resume")
    assert not (tmp_path / "sweeps").exists()


@pytest.mark.slow
def test_run_with_a_corrupt_tracking_store_is_one_line_exit_2_and_leaves_no_sweep(tmp_path, tiny_set):
    import yaml
    cfg = write_config(tmp_path / "s.yaml", tiny_set, tmp_path / "cache")
    raw = yaml.safe_load(cfg.read_text())
    raw["search"] = {"train.lr": {"float": [1e-4, 1e-3], "log": True}}
    raw.setdefault("sweep", {})["name"] = "corrupt-store"
    cfg.write_text(yaml.safe_dump(raw))
    (tmp_path / "sweeps").mkdir()
    (tmp_path / "sweeps" / "mlflow.db").write_bytes(b"not a database" * 100)
    proc = subprocess.run([sys.executable, "-m", "dfsweep", "run", str(cfg)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    errors = [l for l in proc.stderr.splitlines() if l.startswith("dfsweep: error: ")]   # beside progress lines
    assert proc.returncode == 2 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "cannot open the MLflow tracking store sqlite:///" in errors[0] and "file is not a database" in errors[0]
    assert sorted(p.name for p in (tmp_path / "sweeps").iterdir()) == ["mlflow.db"]


def test_model_files_that_are_not_checkpoints(tmp_path, tiny_set, capsys):
    class Payload:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    torch.save({"format": "dfsweep-checkpoint-v1", "x": Payload()}, tmp_path / "evil.pth")
    (tmp_path / "text.pth").write_text("not a model")
    for name, needle in (("evil.pth", "refused to load"), ("text.pth", "not a dfsweep checkpoint"),
                         ("absent.pth", "not found")):
        for argv in (["evaluate", str(tmp_path / name), str(tiny_set)], ["predict", str(tmp_path / name), str(tiny_set)]):
            code, out, err = _run(argv, capsys)
            _one_error_line(code, err, needle)
            assert out == ""
    assert not (tmp_path / "pwned").exists()


def test_predict_and_evaluate_bad_inputs(tmp_path, tiny_config, tiny_set, capsys):
    out_dir = tmp_path / "m"
    assert _run(["train", str(tiny_config), "--out", str(out_dir)], capsys)[0] == 0
    model = str(out_dir / "model.pth")
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "notes.txt").write_text("x")
    cases = [
        (["predict", model, str(empty)], "no images"),
        (["predict", model, str(tmp_path / "nope")], "not found"),
        (["predict", model, str(tmp_path / "notes.txt")], "not an image file"),
        (["evaluate", model, str(empty)], str(empty)),
        (["evaluate", model, str(tmp_path / "nope")], "not found"),
    ]
    for argv, needle in cases:
        code, _, err = _run(argv, capsys)
        _one_error_line(code, err, needle)
    code, out, err = _run(["predict", model, str(tiny_set / "real"), "--out", str(tmp_path / "p.csv")], capsys)
    assert code == 0 and (tmp_path / "p.csv").is_file()


def test_predict_takes_a_labelled_set_as_evaluate_does(tmp_path, tiny_config, tiny_set, capsys):
    """The set's root (real/ + fake/) is scored as its images, the known label beside each prediction, the
    same probabilities as its folders scored one by one."""
    import pandas as pd
    out_dir = tmp_path / "m"
    assert _run(["train", str(tiny_config), "--out", str(out_dir)], capsys)[0] == 0
    model = str(out_dir / "model.pth")
    code, _, err = _run(["predict", model, str(tiny_set), "--out", str(tmp_path / "set.csv")], capsys)
    assert code == 0, err
    whole = pd.read_csv(tmp_path / "set.csv").set_index("id")
    assert _run(["predict", model, str(tiny_set / "real"), str(tiny_set / "fake"), "--out",
                 str(tmp_path / "parts.csv")], capsys)[0] == 0
    parts = pd.read_csv(tmp_path / "parts.csv").set_index("id")
    assert "true_label" not in parts and sorted(whole.index) == sorted(parts.index)
    assert (whole["probability"] - parts.loc[whole.index, "probability"]).abs().max() < 1e-6
    real = {p.stem for p in (tiny_set / "real").iterdir()}
    assert all(whole.loc[i, "true_label"] == (0 if i in real else 1) for i in whole.index)


def test_skip_bad_images_counts_and_trains(tmp_path, capsys):
    data = write_tiny_set(tmp_path / "d", n_real=12, n_fake=6)
    (data / "real" / "zero.jpg").write_bytes(b"")
    (data / "fake" / "junk.png").write_text("not a png")
    cfg = write_config(tmp_path / "c.yaml", data, tmp_path / "cache", data={"on_bad_image": "skip"})
    code, out, err = _run(["train", str(cfg), "--out", str(tmp_path / "o")], capsys)
    assert code == 0, err
    assert "zero.jpg" in err and "junk.png" in err and "skipped 2 bad image(s) of 20" in err
    assert "18 images (12 real, 6 fake)" in out
