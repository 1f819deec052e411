import math

import numpy as np
import pytest
import torch

from dfsweep.config import config_from_dict
from tinydata import in_cache, bright_patch_set
from dfsweep.train import TrainingDiverged, build_model, build_optimizer, fit


def _set(n_real=40, n_fake=12, size=64, seed=0):
    return bright_patch_set(n_real, n_fake, size, seed)


def _cfg(**train):
    t = {"epochs": 2, "batch_size": 8, "lr": 1e-3, "threads": 1, **train}
    return config_from_dict({"data": {"image_size": 64, "val_fraction": 0.25},
                             "model": {"name": "deepfakenet", "width": 0.25}, "train": t})


KEYS = {"epoch", "train_loss", "val_loss", "auc", "ap", "f1", "recall", "precision", "threshold", "lr"}


def test_fit_reports_every_epoch_with_validation_metrics():
    seen = []
    res = fit(_cfg(), _set(), on_epoch=lambda m, state: seen.append((m, state())))
    assert [m["epoch"] for m, _ in seen] == [1, 2]
    for m, state in seen:
        assert KEYS <= set(m)
        assert all(math.isfinite(m[k]) for k in KEYS)
        assert 0.0 <= m["auc"] <= 1.0 and 0.0 <= m["threshold"] <= 1.0
        assert state["epoch"] == m["epoch"] and "optimizer" in state
    assert res.best_epoch in (1, 2)
    assert res.val_scores is not None and len(res.val_scores) == len(res.val_labels)
    assert res.threshold == res.best_metrics["threshold"]


def test_same_seed_same_run_other_seed_differs():
    a = fit(_cfg(epochs=1), _set()).history[0]
    b = fit(_cfg(epochs=1), _set()).history[0]
    c = fit(_cfg(epochs=1, seed=7), _set()).history[0]
    assert a["train_loss"] == b["train_loss"] and a["val_loss"] == b["val_loss"]
    assert a["train_loss"] != c["train_loss"]


def test_resume_continues_exactly():
    data = _set()
    full = fit(_cfg(epochs=2), data)
    states = []
    fit(_cfg(epochs=1), data, on_epoch=lambda m, s: states.append(s()))
    resumed = fit(_cfg(epochs=2), data, resume=states[-1])
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    assert resumed.history[1]["train_loss"] == pytest.approx(full.history[1]["train_loss"], rel=1e-6)
    for k, v in full.model.state_dict().items():
        assert torch.allclose(v.float(), resumed.model.state_dict()[k].float(), atol=1e-6), k


def test_init_state_starts_from_given_weights_and_no_validation_trains_all():
    data = _set()
    first = fit(_cfg(epochs=1), data)
    idx = np.arange(len(data))
    second = fit(_cfg(epochs=1, lr=1e-12), data, train_idx=idx, val_idx=[], init_state=first.best_state)
    assert "auc" not in second.history[0]
    for k, v in first.best_state.items():
        if v.dtype.is_floating_point and "running" not in k:
            assert torch.allclose(v, second.best_state[k], atol=1e-5), k


def test_learns_an_easy_signal():
    res = fit(_cfg(epochs=4, lr=3e-3), _set(n_real=60, n_fake=20))
    assert max(h["auc"] for h in res.history) > 0.8


def test_diverging_loss_is_an_error():
    with pytest.raises(TrainingDiverged, match="loss became"):
        fit(_cfg(epochs=3, lr=1e25), _set())


def test_loader_workers_train_exactly_like_the_training_process():
    """Augmentation is a function of (seed, epoch, batch), so moving it into workers changes nothing."""
    data = _set()
    a = fit(_cfg(num_workers=0, epochs=1), data)
    b = fit(_cfg(num_workers=1, epochs=1), data)
    assert a.history[0]["train_loss"] == b.history[0]["train_loss"]
    assert all(torch.equal(a.best_state[k], b.best_state[k]) for k in a.best_state)


def test_training_reads_the_shared_array_without_copying_it():
    data = _set()
    data.images.flags.writeable = False          # as Ray's object store hands it over
    res = fit(_cfg(epochs=1), data)
    assert math.isfinite(res.history[0]["train_loss"])


def test_the_fused_optimiser_takes_adamws_steps():
    cfg = _cfg(lr=1e-2, weight_decay=0.1)
    torch.manual_seed(0)
    fused_model = build_model(cfg, torch.device("cpu"))
    plain_model = build_model(cfg, torch.device("cpu"))
    plain_model.load_state_dict(fused_model.state_dict())
    start = [p.detach().clone() for p in fused_model.parameters()]
    fused_model.eval()                                   # no dropout: both see the same gradients
    plain_model.eval()
    fused = build_optimizer(cfg, fused_model)
    plain = torch.optim.AdamW(plain_model.parameters(), lr=1e-2, weight_decay=0.1, foreach=False)
    assert fused.defaults["fused"]
    x = torch.randn(4, 3, 64, 64)
    for _ in range(3):
        for model, opt in ((fused_model, fused), (plain_model, plain)):
            opt.zero_grad()
            model(x).sum().backward()
            opt.step()
    moved = [(a - b).abs().max().item() for a, b in zip(fused_model.parameters(), plain_model.parameters())]
    assert max(moved) < 1e-4
    assert any((a - b).abs().max() > 1e-3 for a, b in zip(fused_model.parameters(), start))   # it did step


def test_self_blending_turns_real_faces_into_fakes_during_training():
    cfg = _cfg(epochs=1).replace({"augment.self_blend_p": 1.0})
    res = fit(cfg, _set())
    assert math.isfinite(res.history[0]["train_loss"])


@pytest.mark.slow
def test_compiled_training_saves_plain_weights():
    """train.compile: the step runs through torch.compile; the weights it saves load into an eager model.
    In "reduce-overhead" mode, the one that replays CUDA graphs on a GPU (here on the CPU: compiled code)."""
    res = fit(_cfg(epochs=1, compile=True, compile_mode="reduce-overhead"), _set())
    assert math.isfinite(res.history[0]["train_loss"])
    eager = fit(_cfg(epochs=1), _set())
    assert set(res.best_state) == set(eager.best_state)
    assert abs(res.history[0]["train_loss"] - eager.history[0]["train_loss"]) < 0.05


@pytest.mark.parametrize("preset", ["seed", "sharp"])
def test_the_gpu_data_path_run_on_the_cpu_trains_like_the_per_box_path(preset, monkeypatch):
    """The augmentation's GPU path (an epoch's plan held as tensors on the device, one roi_align crop per
    batch, the blurred or sharpened samples picked by index rows), made to run on the CPU: it learns, and
    its losses track the per-box path's to within interpolation rounding at the boxes' edges."""
    from dfsweep.augment import pipeline
    data = _set(n_real=60, n_fake=20)
    cfg = config_from_dict({"data": {"image_size": 64, "val_fraction": 0.25},
                            "model": {"name": "deepfakenet", "width": 0.25}, "augment": {"preset": preset},
                            "train": {"epochs": 4, "batch_size": 8, "lr": 3e-3, "threads": 1, "channels_last": True}})
    per_box = fit(cfg, data)
    monkeypatch.setattr(pipeline, "gpu_or_none", lambda device: device)    # plans go "to the device": the CPU
    batched_path = fit(cfg, data)
    assert max(h["auc"] for h in batched_path.history) > 0.8
    first, other = batched_path.history[0]["train_loss"], per_box.history[0]["train_loss"]
    assert first != other and first == pytest.approx(other, rel=0.01)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("preset", ["seed", "sharp"])
def test_cuda_training_with_amp_and_channels_last(preset):
    """The CUDA path: augmentation on the GPU, AMP, channels_last; it learns the easy signal, keeps its
    seed (two runs agree closely) and hands back CPU-loadable float32 weights."""
    data = _set(n_real=60, n_fake=20)
    cfg = config_from_dict({"data": {"image_size": 64, "val_fraction": 0.25},
                            "model": {"name": "deepfakenet", "width": 0.25},
                            "augment": {"preset": preset, "self_blend_p": 0.2, "jpeg_p": 0.3, "rescale_p": 0.3},
                            "train": {"epochs": 4, "batch_size": 8, "lr": 3e-3, "device": "cuda", "amp": True,
                                      "channels_last": True}})
    a = fit(cfg, data)
    b = fit(cfg, data)
    assert max(h["auc"] for h in a.history) > 0.8
    assert a.history[0]["train_loss"] == pytest.approx(b.history[0]["train_loss"], rel=1e-3)
    assert all(v.device.type == "cpu" for v in a.best_state.values())
    assert all(v.dtype != torch.bfloat16 and v.dtype != torch.float16 for v in a.best_state.values())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_training_from_the_cache_moved_whole_or_streamed(tmp_path, monkeypatch):
    """A set in the cache on a GPU: moved there whole when it fits (the same history as from memory), or, when
    it does not, each batch read from the cache and copied (it learns, with the same first loss)."""
    from dfsweep import train as train_mod
    data = _set(n_real=60, n_fake=20)
    cached = in_cache(data, tmp_path / "cache")
    cfg = config_from_dict({"data": {"image_size": 64, "val_fraction": 0.25},
                            "model": {"name": "deepfakenet", "width": 0.25},
                            "train": {"epochs": 3, "batch_size": 8, "lr": 3e-3, "device": "cuda", "amp": True,
                                      "channels_last": True}})
    memory, whole = fit(cfg, data), fit(cfg, cached)
    assert [h["train_loss"] for h in whole.history] == pytest.approx([h["train_loss"] for h in memory.history],
                                                                      rel=1e-3)
    monkeypatch.setattr(train_mod, "pixels_on", lambda images, device: images)    # as if it did not fit
    streamed = fit(cfg, cached)
    assert max(h["auc"] for h in streamed.history) > 0.8
    assert streamed.history[0]["train_loss"] == pytest.approx(whole.history[0]["train_loss"], rel=1e-3)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_graphs_step_trains_like_the_eager_step():
    """train.compile_mode=reduce-overhead on CUDA: the step replays as CUDA graphs (AMP, channels_last, the
    batch augmented on the GPU); it learns, and its losses track the eager run's."""
    data = _set(n_real=60, n_fake=20)
    raw = {"data": {"image_size": 64, "val_fraction": 0.25}, "model": {"name": "deepfakenet", "width": 0.25},
           "train": {"epochs": 4, "batch_size": 8, "lr": 3e-3, "device": "cuda", "amp": True}}
    eager = fit(config_from_dict(raw), data)
    raw["train"].update(compile=True, compile_mode="reduce-overhead")
    graphs = fit(config_from_dict(raw), data)
    assert max(h["auc"] for h in graphs.history) > 0.8
    assert graphs.history[0]["train_loss"] == pytest.approx(eager.history[0]["train_loss"], rel=0.05)
    assert all(v.device.type == "cpu" for v in graphs.best_state.values())


def test_other_validation_sets_are_scored_every_epoch_and_a_composite_picks_the_best_epoch():
    from dfsweep.config import SweepConfig
    from dfsweep.objective import Scoring
    from dfsweep.data.resize import at_size
    scoring = Scoring.of(SweepConfig(metric={"min": ["auc", "auc@easy"]}))
    easy = _set(20, 20, seed=5)
    seen = []
    states = []
    res = fit(_cfg(epochs=3), _set(), on_epoch=lambda m, state: (seen.append(m), states.append(state())),
              select=scoring,
              val_sets={"easy": easy, "small": at_size(_set(20, 10, seed=6, size=96), 64)})
    for m in seen:
        for name in ("easy", "small"):
            for k in ("auc", "ap", "f1", "recall", "precision", "threshold", "val_loss", "auc_lo", "auc_hi"):
                assert math.isfinite(m[f"{k}@{name}"]), (k, name)
            assert m[f"auc_lo@{name}"] <= m[f"auc@{name}"] <= m[f"auc_hi@{name}"]
        assert "tp@easy" not in m
        assert m["min(auc,auc@easy)"] == min(m["auc"], m["auc@easy"])
    # the kept epoch is the one with the best worst case, its threshold the in-domain one of that epoch
    best = max(seen, key=lambda m: m["min(auc,auc@easy)"])
    assert res.best_epoch == best["epoch"] and res.threshold == best["threshold"]
    # the best epoch's scores on each set travel with the resumable state (what the verdict compares)
    assert {k: len(v) for k, v in res.val_set_scores.items()} == {"easy": 40, "small": 30}
    assert set(states[-1]["best"]["set_scores"]) == {"easy", "small"}
    assert isinstance(states[-1]["best"]["set_scores"]["easy"], torch.Tensor)

