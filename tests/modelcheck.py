"""The check every registered model (and every input stem on it) must pass on a tiny input."""
import torch


def assert_trains(model: torch.nn.Module, x: torch.Tensor, tag: str) -> None:
    """One logit per image, finite; backward reaches every parameter with a finite gradient."""
    out = model(x)
    assert out.shape == (len(x), 1) and torch.isfinite(out).all(), tag
    out.sum().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{tag}: {pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{tag}: {pname} has a non-finite gradient"
