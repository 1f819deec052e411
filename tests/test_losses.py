import math

import pytest
import torch

from dfsweep.config import LossConfig
from dfsweep.losses import BceFocalLoss, build_loss


def _sig(x):
    return 1 / (1 + math.exp(-x))


def test_mix_matches_hand_computed_values():
    logits = [2.0, -1.0, 0.5]
    targets = [1, 0, 0]
    pw, w, g = 5.0, 0.6, 2.0
    bce = focal = 0.0
    for x, t in zip(logits, targets):
        p = _sig(x)
        pt = p if t == 1 else 1 - p
        bce += -(pw if t == 1 else 1.0) * math.log(pt)
        focal += -((1 - pt) ** g) * math.log(pt)
    expected = w * bce / 3 + (1 - w) * focal / 3
    got = BceFocalLoss(w, g, pw)(torch.tensor(logits), torch.tensor(targets, dtype=torch.float32))
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_pure_bce_and_pure_focal_ends():
    x = torch.tensor([0.3, -2.0])
    y = torch.tensor([1.0, 1.0])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(x, y)
    assert BceFocalLoss(1.0, 2.0, None)(x, y).item() == pytest.approx(bce.item())
    p = torch.sigmoid(x)
    focal = (-(1 - p) ** 3 * torch.log(p)).mean()
    assert BceFocalLoss(0.0, 3.0, None)(x, y).item() == pytest.approx(focal.item(), rel=1e-5)


def test_focal_gamma_zero_equals_bce():
    x = torch.randn(20)
    y = (torch.rand(20) > 0.5).float()
    assert BceFocalLoss(0.0, 0.0, None)(x, y).item() == pytest.approx(BceFocalLoss(1.0, 2.0, None)(x, y).item(), rel=1e-5)


def test_pos_weight_defaults_to_class_ratio_unless_set():
    assert build_loss(LossConfig(), n_real=500, n_fake=100).pos_weight.item() == pytest.approx(5.0)
    assert build_loss(LossConfig(pos_weight=2.5), 500, 100).pos_weight.item() == pytest.approx(2.5)


def test_gradient_flows():
    x = torch.randn(8, 1, requires_grad=True)
    loss = BceFocalLoss()(x, torch.ones(8))
    loss.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("gamma", [0.3, 0.79, 2.0])
def test_confident_predictions_keep_finite_gradients(gamma):
    # torchvision's sigmoid_focal_loss gives NaN gradients here for gamma < 1
    x = torch.tensor([30.0, -30.0, 25.0], requires_grad=True)
    y = torch.tensor([1.0, 0.0, 1.0])
    loss = BceFocalLoss(0.5, gamma, 5.0)(x, y)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
