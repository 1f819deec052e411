"""Every registered model: tiny forward+backward, parameters that matter, registry errors, determinism."""
import math

import pytest
import torch

from dfsweep.errors import DfsweepError
from dfsweep.models import MODELS, create_model
from dfsweep.models.layers import log_spectrum
from modelcheck import assert_trains

NAMES = MODELS.names()
# Knobs that must change the size of the net, and how to move each one away from its default.
SIZE_KNOBS = {
    "width": lambda v: v * 2,
    "depth": lambda v: v + 1,
    "blocks": lambda v: v + 1,
    "stages": lambda v: v + 1,
    "branches": lambda v: v - 1 if v > 2 else v + 1,
}


def _n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_all_families_are_registered():
    assert set(NAMES) >= {"deepfakenet", "hrnet", "resnet", "fft"}


@pytest.mark.parametrize("size", [64, 100])
@pytest.mark.parametrize("name", NAMES)
def test_forward_backward(name, size):
    torch.manual_seed(0)
    assert_trains(create_model(name).train(), torch.randn(2, 3, size, size), name)


@pytest.mark.parametrize("name", NAMES)
def test_forward_features_and_head_compose(name):
    torch.manual_seed(0)
    model = create_model(name).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.ndim == 4 and feats.shape[0] == 2
        torch.testing.assert_close(model.forward_head(feats), model(x))


@pytest.mark.parametrize("name", NAMES)
def test_in_chans_and_num_classes(name):
    model = create_model(name, in_chans=1, num_classes=3).train()
    assert model(torch.randn(2, 1, 64, 64)).shape == (2, 3)


@pytest.mark.parametrize("name", NAMES)
def test_size_knobs_change_parameter_count(name):
    defaults = MODELS.defaults(name)
    knobs = [k for k in SIZE_KNOBS if k in defaults]
    assert knobs, f"{name} exposes no size parameter"
    base = _n_params(create_model(name))
    for k in knobs:
        assert _n_params(create_model(name, **{k: SIZE_KNOBS[k](defaults[k])})) != base, k


@pytest.mark.parametrize("name", NAMES)
def test_channels_last_eval_matches_contiguous(name):
    torch.manual_seed(0)
    model = create_model(name).eval()
    x = torch.randn(2, 3, 72, 72)
    with torch.no_grad():
        ref = model(x)
        model = model.to(memory_format=torch.channels_last)
        out = model(x.contiguous(memory_format=torch.channels_last))
    assert out.shape == (2, 1) and torch.isfinite(out).all()
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_cpu_autocast_bfloat16(name):
    torch.manual_seed(0)
    model = create_model(name).train().to(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 72, 72).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    assert out.shape == (2, 1) and torch.isfinite(out.float()).all()
    out.float().sum().backward()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", NAMES)
def test_cuda_autocast_channels_last(name):
    model = create_model(name).cuda().train().to(memory_format=torch.channels_last)
    x = torch.randn(4, 3, 100, 100, device="cuda").contiguous(memory_format=torch.channels_last)
    with torch.autocast("cuda", dtype=torch.float16):
        out = model(x)
    assert out.shape == (4, 1) and torch.isfinite(out.float()).all()
    out.float().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_seeded_construction_is_deterministic(name):
    torch.manual_seed(123)
    a = create_model(name).state_dict()
    torch.manual_seed(123)
    b = create_model(name).state_dict()
    torch.manual_seed(124)
    c = create_model(name).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("name", NAMES)
def test_factories_are_keyword_only_with_defaults(name):
    defaults = MODELS.defaults(name)
    assert defaults["in_chans"] == 3 and defaults["num_classes"] == 1
    with pytest.raises(TypeError):
        MODELS.get(name)(3)


def test_unknown_parameter_names_the_valid_ones():
    with pytest.raises(DfsweepError, match=r"model\.widht: unknown parameter.*valid: .*width"):
        create_model("hrnet", widht=16)


def test_unknown_model_lists_valid_names():
    with pytest.raises(DfsweepError, match=r"unknown model 'nope'; valid choices: .*deepfakenet.*hrnet"):
        create_model("nope")


def test_duplicate_registration_raises():
    def deepfakenet():  # same name as the registered family
        raise AssertionError("never called")

    with pytest.raises(ValueError, match="already registered"):
        MODELS.register(deepfakenet)
    assert MODELS.get("deepfakenet") is not deepfakenet


def test_params_are_coerced_by_default_type():
    model = create_model("hrnet", width=8.0, dropout=0, branches=2, stages=1)
    assert model.cfg.width == 8 and isinstance(model.cfg.width, int)
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 1)


@pytest.mark.parametrize("name, bad", [
    ("deepfakenet", {"depth": 0}),
    ("hrnet", {"branches": 5}),
    ("hrnet", {"stem_stride": 8}),
    ("resnet", {"width": 0.0}),
    ("fft", {"spectrum": "hsv"}),
])
def test_bad_values_raise(name, bad):
    with pytest.raises(DfsweepError, match=f"model.{next(iter(bad))}"):
        create_model(name, **bad)


@pytest.mark.parametrize("branches, stages", [(2, 1), (4, 1), (3, 4), (4, 2)])
def test_hrnet_schedule_reaches_all_branches(branches, stages):
    model = create_model("hrnet", width=8, branches=branches, stages=stages)
    assert len(model.cfg.modules) == stages and model.cfg.modules[-1] == branches
    assert list(model.cfg.modules) == sorted(model.cfg.modules)
    assert model(torch.randn(2, 3, 100, 100)).shape == (2, 1)


def test_hrnet_stem_has_no_pooling():
    model = create_model("hrnet")
    assert not any(isinstance(m, (torch.nn.MaxPool2d, torch.nn.AvgPool2d)) for m in model.stem.modules())


def test_log_spectrum_is_standardised_per_image():
    x = torch.randn(3, 3, 72, 100) * torch.tensor([1.0, 5.0, 0.1]).view(3, 1, 1, 1)
    s = log_spectrum(x)
    assert s.shape == (3, 1, 72, 100)
    torch.testing.assert_close(s.mean(dim=(1, 2, 3)), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(s.std(dim=(1, 2, 3)), torch.ones(3), atol=1e-3, rtol=0)
    assert log_spectrum(x, gray=False).shape == (3, 3, 72, 100)
    # Centred: the DC term (largest for a mean-shifted image) lands in the middle.
    s = log_spectrum(torch.randn(1, 3, 64, 64) + 10.0)
    assert divmod(int(s.flatten().argmax()), 64) == (32, 32)
    assert not math.isnan(float(s.sum()))


def test_meta_device_build_skips_init_and_never_imports_dynamo():
    """The config's range check builds the model on the meta device: no weight init there (normal_ on meta
    imported torch._dynamo, ~1-1.6 s per process), while a real build is initialised as before."""
    import subprocess
    import sys
    code = ("import sys, torch\n"
            "from dfsweep.config import config_from_dict\n"
            "from dfsweep.models import MODELS\n"
            "for name in MODELS.names():\n"
            "    config_from_dict({'data': {'train': 'x'}, 'model': {'name': name}})\n"
            "assert 'torch._dynamo' not in sys.modules, 'meta build imported torch._dynamo'\n"
            "from dfsweep.models import create_model\n"
            "m = create_model('deepfakenet')\n"
            "bn = [x for x in m.modules() if isinstance(x, torch.nn.BatchNorm2d)]\n"
            "conv = [x for x in m.modules() if isinstance(x, torch.nn.Conv2d)]\n"
            "assert float(conv[0].weight.detach().std()) > 0\n"
            "assert any(bool((x.weight == 0).all()) for x in bn), 'zero_init_last did not run'  # default BN init is 1\n"
            "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]
