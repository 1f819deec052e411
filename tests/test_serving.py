"""finalize's MLflow model: models:/NAME@champion loads with mlflow.pyfunc, is served by `mlflow models serve`, and
`dfsweep predict` takes it; each gives the probabilities `dfsweep predict` gives with the checkpoint file."""
import base64
import io
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import yaml

import dfsweep
from dfsweep.cli import main
from dfsweep.errors import DfsweepError
from dfsweep.finalize import finalize
from dfsweep.predict import predict_paths
from dfsweep.serving import decode_rows
from test_finalize import _fake_sweep
from tinydata import write_tiny_set
from uitools import free_port, wait_for_url

MODEL = "models:/s@champion"


@pytest.fixture(scope="module")
def champion(tmp_path_factory):
    """(tracking URI, fine-tuned checkpoint, test images): a tiny sweep's store as `dfsweep run` leaves it (the
    experiment, its parent run, state.json), then finalize with model registration."""
    from dfsweep.tracking import SweepTracker
    root = tmp_path_factory.mktemp("champion")
    sweep = _fake_sweep(root, epochs=1, finetune_epochs=1)
    best = yaml.safe_load((sweep / "best.yaml").read_text())
    best["finalize"]["register_model"] = True
    (sweep / "best.yaml").write_text(yaml.safe_dump(best))
    uri = f"sqlite:///{root / 'mlflow.db'}"
    parent = SweepTracker(uri, "s", artifact_root=root / "artifacts").start_parent("s", {})
    (sweep / "state.json").write_text(json.dumps({"tracking_uri": uri, "experiment": "s", "parent_run_id": parent}))
    before = os.environ.get("MLFLOW_TRACKING_URI")
    summary = finalize(str(sweep), echo=lambda _: None)
    assert summary["registered_version"] == 1
    assert os.environ.get("MLFLOW_TRACKING_URI") == before      # logging the model left MLflow's global URI as it was
    images = sorted((root / "test" / "real").iterdir())
    return uri, sweep / "final" / "best_model_finetuned.pth", images


def test_champion_loads_with_pyfunc_and_predicts_as_dfsweep_predict(champion, monkeypatch, capsys):
    """Bytes, base64 text and paths in the `image` column all give the checkpoint's probabilities and labels;
    `dfsweep predict models:/s@champion` gives them too."""
    import mlflow.pyfunc
    from mlflow import MlflowClient
    uri, checkpoint, images = champion
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    expected = predict_paths(checkpoint, [str(p) for p in images])
    assert expected["probability"].std() > 0                 # distinct images, distinct numbers to match
    model = mlflow.pyfunc.load_model(MODEL)
    sig = model.metadata.signature
    assert sig.inputs.input_names() == ["image"] and sig.outputs.input_names() == ["probability", "label"]
    assert model.metadata.get_input_schema() is not None and model.metadata.saved_input_example_info is not None
    for rows in ([p.read_bytes() for p in images], [base64.b64encode(p.read_bytes()).decode() for p in images],
                 [str(p) for p in images]):
        got = model.predict(pd.DataFrame({"image": rows}))
        assert got["probability"].to_numpy() == pytest.approx(expected["probability"].to_numpy(), abs=1e-6)
        assert list(got["label"]) == list(expected["label"])

    client = MlflowClient(uri)
    version = client.get_model_version_by_alias("s", "champion")
    assert int(version.version) == 1
    assert float(version.tags["threshold"]) == pytest.approx(model.metadata.metadata["threshold"])
    finalize_run = client.get_run(version.run_id)
    assert finalize_run.data.tags["dfsweep.stage"] == "finalize"

    assert main(["predict", MODEL, *map(str, images)]) == 0
    cli = pd.read_csv(io.StringIO(capsys.readouterr().out), dtype={"id": str})
    assert cli["probability"].to_numpy() == pytest.approx(expected["probability"].to_numpy(), abs=1e-6)
    assert list(cli["id"]) == list(expected["id"])


def test_predict_looks_in_the_sweeps_store_by_default(champion, monkeypatch, tmp_path, capsys):
    """Without MLFLOW_TRACKING_URI, models:/ resolves in sweeps/mlflow.db, the store `dfsweep run` writes."""
    uri, checkpoint, images = champion
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "sweeps").mkdir()
    (tmp_path / "sweeps" / "mlflow.db").symlink_to(uri.removeprefix("sqlite:///"))
    assert main(["predict", MODEL, str(images[0])]) == 0
    got = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert got["probability"][0] == pytest.approx(predict_paths(checkpoint, [images[0]])["probability"][0], abs=1e-6)


def test_a_model_uri_that_is_not_there_is_one_line(champion, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", champion[0])
    assert main(["predict", "models:/s@nobody", str(champion[2][0])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dfsweep: error: models:/s@nobody: cannot load it from "), err


def test_rows_decode_like_files_and_bad_rows_name_their_row(tmp_path):
    files = sorted((write_tiny_set(tmp_path / "d", n_real=2, n_fake=1) / "fake").iterdir()) + \
        sorted((tmp_path / "d" / "real").iterdir())
    from dfsweep.data import decode_image
    want = [decode_image(p, 32) for p in files]
    rows = [files[0].read_bytes(), base64.encodebytes(files[1].read_bytes()).decode(), str(files[2])]
    got = decode_rows(rows, 32)
    assert all((g == w).all() for g, w in zip(got, want))
    for bad, why in (("not base64!", "row 1: neither an image file that exists nor base64 of one"),
                     (b"GIF89a-broken", "row 1: "), (3.5, "row 1: an image is bytes, base64 text or a path, not float")):
        with pytest.raises(DfsweepError, match=why.replace("(", r"\(")):
            decode_rows([rows[0], bad], 32)


def _post(url: str, payload: dict):
    req = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def _wait_for_ping(base: str, proc: subprocess.Popen, log: Path, limit: float = 180) -> None:
    wait_for_url(f"{base}/ping", proc, log, "mlflow models serve", limit)


@pytest.mark.slow
def test_mlflow_models_serve_answers_a_real_image_as_dfsweep_predict(champion, tmp_path):
    """`mlflow models serve -m models:/s@champion --env-manager local` takes a PNG as base64 in JSON and answers
    with the probability and label the `dfsweep predict` command prints for that file."""
    uri, _, images = champion
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri,
           "PYTHONPATH": os.pathsep.join([str(Path(dfsweep.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-m", "dfsweep", "predict", MODEL, str(images[0])], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    expected = pd.read_csv(io.StringIO(r.stdout)).iloc[0]
    port, log = free_port(), tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m", MODEL,
                                 "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)], env=env,
                                cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for_ping(base, proc, log)
        image = base64.b64encode(images[0].read_bytes()).decode()
        got = _post(f"{base}/invocations", {"dataframe_split": {"columns": ["image"], "data": [[image]]}})
        assert got["predictions"][0]["probability"] == pytest.approx(expected["probability"], abs=1e-6)
        assert got["predictions"][0]["label"] == expected["label"]
        with pytest.raises(urllib.error.HTTPError) as bad:
            _post(f"{base}/invocations", {"dataframe_records": [{"image": base64.b64encode(b"no image").decode()}]})
        assert bad.value.code == 400 and "row 0: not an image" in json.loads(bad.value.read())["message"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)     # the CLI and the uvicorn worker it starts share the group
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
