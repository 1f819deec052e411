"""Input stems: every stem x every registered model trains, each stem sees what it should, config and search."""
import optuna
import pytest
import torch

from dfsweep.checkpoint import save_checkpoint
from dfsweep.config import Config, config_from_dict
from dfsweep.errors import DfsweepError
from dfsweep.models import INPUTS, MODELS, WithInput, build_input, create_model, input_channels
from dfsweep.predict import load_model
from dfsweep.space import parse_space
from modelcheck import assert_trains

SPECS = INPUTS.names() + ["rgb+npr", "srm+fft"]


def test_all_stems_are_registered():
    assert set(INPUTS.names()) == {"rgb", "npr", "srm", "fft"}


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("name", MODELS.names())
def test_forward_backward_every_stem_every_model(name, spec):
    torch.manual_seed(0)
    assert_trains(create_model(name, input=spec).train(), torch.randn(2, 3, 64, 64), f"{name}/{spec}")


@pytest.mark.parametrize("spec", SPECS)
def test_stems_shape_channels_and_no_parameters(spec):
    stem = build_input(spec)
    x = torch.randn(2, 3, 65, 70)  # odd height on purpose
    y = stem(x)
    assert y.shape == (2, input_channels(spec), 65, 70) and stem.out_channels == input_channels(spec)
    assert y.dtype == torch.float32 and torch.isfinite(y).all()
    assert not list(stem.parameters()) and not stem.state_dict()
    xc = x.contiguous(memory_format=torch.channels_last)
    yc = stem(xc)
    assert yc.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(yc, y, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("spec", ["npr", "srm", "fft"])
def test_residual_stems_are_float32_under_bf16_autocast(spec):
    x = torch.randn(2, 3, 64, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = build_input(spec)(x)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, build_input(spec)(x))


def test_rgb_is_the_plain_model_with_unchanged_keys():
    torch.manual_seed(0)
    plain = create_model("deepfakenet")
    assert type(plain) is type(MODELS.get("deepfakenet")())
    assert type(create_model("deepfakenet", input="rgb")) is type(plain)


@pytest.mark.parametrize("name", MODELS.names())
def test_other_stems_wrap_the_net_and_add_no_state(name):
    plain = create_model(name, in_chans=6).state_dict()
    wrapped = create_model(name, input="rgb+npr")
    assert isinstance(wrapped, WithInput)
    assert set(wrapped.state_dict()) == {f"net.{k}" for k in plain}
    x = torch.randn(2, 3, 64, 64)
    wrapped.eval()
    with torch.no_grad():
        torch.testing.assert_close(wrapped.forward_head(wrapped.forward_features(x)), wrapped(x))


def test_in_chans_cannot_be_given_with_a_stem():
    with pytest.raises(DfsweepError, match="model.input"):
        create_model("deepfakenet", input="npr", in_chans=3)


def _blocks(values: torch.Tensor) -> torch.Tensor:
    """(N, C, h, w) -> (N, C, 2h, 2w), every value repeated over a 2x2 block."""
    return values.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)


def test_npr_is_zero_on_2x2_blocks_and_not_on_a_checkerboard():
    npr = build_input("npr")
    flat = _blocks(torch.randn(2, 3, 16, 16))
    assert npr(flat).abs().max() == 0
    odd = _blocks(torch.randn(1, 3, 17, 17))[..., :33, :33]  # odd size: the last row/column are their own block
    assert npr(odd).abs().max() == 0
    yy, xx = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    checker = ((yy + xx) % 2).float().expand(2, 3, 32, 32)
    out = npr(checker)
    assert out.abs().max() > 0.5
    # the sampled pixel of each block is unchanged; the two neighbours that differ from it carry the signal
    assert out[..., ::2, ::2].abs().max() == 0 and out[..., 0, 1].abs().min() > 0.5


def test_srm_is_zero_on_a_constant_image_and_sees_noise():
    srm = build_input("srm")
    assert srm(torch.full((2, 3, 32, 32), 0.7)).abs().max() < 1e-4
    # away from the border (where reflect padding folds it), a ramp is invisible to the kernels; noise is not
    ramp = torch.linspace(-1, 1, 32).expand(1, 3, 32, 32)
    assert srm(ramp)[..., 2:-2, 2:-2].abs().max() < 1e-3
    assert srm(ramp + 0.05 * torch.randn(1, 3, 32, 32)).square().mean() > 0.5


def test_fft_responds_to_a_periodic_pattern():
    fft = build_input("fft")
    stripes = torch.cos(torch.arange(64) * (2 * torch.pi / 8)).expand(1, 3, 64, 64)  # period 8 along width
    s = fft(stripes)[0, 0]
    s[32, 32] = s.min()  # ignore DC
    # centred spectrum: frequency 64/8 = 8 bins either side of the centre, on the centre row
    row, col = divmod(int(s.flatten().argmax()), 64)
    assert row == 32 and abs(col - 32) == 8
    flat = build_input("fft")(torch.zeros(1, 3, 64, 64))
    assert not torch.allclose(fft(stripes), flat)


@pytest.mark.parametrize("spec, needle", [
    ("x", "model.input: unknown model input 'x'; valid choices: fft, npr, rgb, srm"),
    ("rgb+x", "unknown model input 'x'"),
    ("rgb+", "unknown model input ''"),
    ("npr+rgb+npr", "model.input: 'npr' appears twice"),
])
def test_bad_specs_raise(spec, needle):
    for fn in (build_input, input_channels, lambda s: create_model("deepfakenet", input=s)):
        with pytest.raises(DfsweepError) as e:
            fn(spec)
        assert needle in str(e.value)
    with pytest.raises(DfsweepError) as e:
        config_from_dict({"model": {"input": spec}})
    assert needle in str(e.value)


def test_config_input_round_trips():
    base = Config()
    assert base.model.input == "rgb" and "input" not in base.to_dict()["model"]  # rgb configs unchanged
    c = base.replace({"model.input": "rgb + npr"})
    assert c.model.input == "rgb+npr" and c.to_dict()["model"] == {"name": "deepfakenet", "input": "rgb+npr"}
    assert config_from_dict(c.to_dict()) == c
    assert c.replace({"model.name": "hrnet"}).model.input == "rgb+npr"  # a family change keeps the stem
    assert c.replace({"model.input": "rgb"}).to_dict() == base.to_dict()
    with pytest.raises(DfsweepError, match="model.input: expected a string"):
        config_from_dict({"model": {"input": ["rgb", "npr"]}})


def test_search_over_input_with_a_condition_on_it():
    cfg = config_from_dict({"search": {
        "model.input": {"choice": ["rgb", "npr", "rgb+npr"]},
        "npr_width": {"key": "model.width", "float": [0.25, 0.5], "when": {"model.input": ["npr", "rgb+npr"]}},
    }})
    space = parse_space(cfg)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0), direction="maximize")
    seen = set()
    for i in range(12):
        t = study.ask()
        space.define_by_run()(t)
        p = dict(t.params)
        c = space.config_for(p)
        assert c.model.input == p["model.input"]
        assert ("npr_width" in p) == ("npr" in p["model.input"])
        seen.add(c.model.input)
        study.tell(t, float(i % 3))
    assert seen == {"rgb", "npr", "rgb+npr"}
    # a condition on a fixed model.input reads the config
    fixed = config_from_dict({"model": {"input": "srm"},
                              "search": {"model.width": {"float": [0.25, 0.5], "when": {"model.input": "srm"}}}})
    t = optuna.create_study().ask()
    parse_space(fixed).define_by_run()(t)
    assert "model.width" in t.params
    with pytest.raises(DfsweepError, match=r"search.model.input: value 'rgb\+rgb' is not valid"):
        parse_space(config_from_dict({"search": {"model.input": {"choice": ["rgb", "rgb+rgb"]}}}))


def test_checkpoint_of_a_stem_model_loads(tmp_path):
    cfg = Config().replace({"model.input": "srm", "model.width": 0.25, "train.channels_last": False})
    torch.manual_seed(0)
    model = create_model("deepfakenet", input="srm", width=0.25).eval()
    path = save_checkpoint(tmp_path / "m.pth", model.state_dict(), cfg.to_dict(), 0.5)
    lm = load_model(path, device="cpu")
    assert isinstance(lm.model, WithInput) and lm.cfg.model.input == "srm"
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(lm.model(x), model(x))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("spec", ["npr", "srm", "fft", "rgb+npr"])
def test_cuda_float16_autocast_odd_size(spec):
    # 100 px: cuFFT's half precision would refuse it, so the stems must run in float32 under autocast
    model = create_model("deepfakenet", input=spec).cuda().train().to(memory_format=torch.channels_last)
    x = torch.randn(4, 3, 100, 100, device="cuda").contiguous(memory_format=torch.channels_last)
    with torch.autocast("cuda", dtype=torch.float16):
        out = model(x)
    assert out.shape == (4, 1) and torch.isfinite(out.float()).all()
    out.float().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
