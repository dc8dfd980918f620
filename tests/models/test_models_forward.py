"""Every registered model: (B, 128) unit vectors without NaN, and gradients reaching every parameter."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from iznet.models import create_model, list_models

# inception_v3: PyTorch's default init instead of torchvision's slow truncated-normal init (same architecture)
_FAST_KW = {"inception_v3": {"init_weights": False}}


@pytest.mark.parametrize("name", list_models())
def test_forward_unit_vectors_and_backward_reaches_every_parameter(name):
    """One forward and one backward pass per model at its native size, batch 2."""
    torch.manual_seed(0)
    model = create_model(name, **_FAST_KW.get(name, {})).train()
    assert model.embedding_dim == 128
    s = model.input_size
    emb = model(torch.randn(2, 3, s, s).clamp(-1, 1))
    assert emb.shape == (2, 128)
    assert torch.isfinite(emb).all()
    assert torch.allclose(emb.norm(dim=1), torch.ones(2), atol=1e-5)
    (emb[0] - emb[1]).pow(2).sum().backward()  # a loss that needs both embeddings
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not no_grad, f"parameters without a finite gradient: {no_grad[:5]}"
    zero = [n for n, p in model.named_parameters() if p.grad.abs().sum() == 0]
    assert not zero, f"parameters with an all-zero gradient: {zero[:5]}"


@pytest.mark.parametrize("name", ["nn4_small", "nn2"])
def test_trunk_and_head_compose_to_forward(name):
    torch.manual_seed(0)
    model = create_model(name, input_size=64).eval()
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (3, model.num_features, 2, 2)
        raw = model.forward_head(feats, normalize=False)
        assert raw.shape == (3, 128)
        assert torch.allclose(F.normalize(raw, dim=1), model(x), atol=1e-6)
        # eval mode: an image's embedding does not depend on the rest of the batch
        assert torch.allclose(model(x[:1]), model(x)[:1], atol=1e-5)


@pytest.mark.parametrize("bn, lrn_default", [(True, False), (False, True)])
def test_lrn_follows_bn_by_default(bn, lrn_default):
    with torch.device("meta"):
        assert create_model("nn2", bn=bn).lrn is lrn_default
        assert create_model("nn1", bn=bn).lrn is lrn_default
        assert isinstance(create_model("nn2", bn=bn, lrn=True).features.norm1, torch.nn.LocalResponseNorm)


def test_lrn_is_nearly_the_identity_after_batch_norm():
    """Why LRN is off with BN: on BN-scaled activations the Caffe LRN divisor is within ~1e-4 of 1."""
    torch.manual_seed(0)
    with_lrn = create_model("nn2", input_size=64, lrn=True)
    without = create_model("nn2", input_size=64, lrn=False)
    without.load_state_dict(with_lrn.state_dict())  # LRN has no parameters: same weights
    x = torch.randn(4, 3, 64, 64).clamp(-1, 1)
    with torch.no_grad():
        for train in (True, False):
            a, b = with_lrn.train(train)(x), without.train(train)(x)
            assert (a - b).norm(dim=1).max() < 0.02  # unit vectors; other people are ~1 apart


def test_gdc_head_starts_as_the_average_pool_head_and_keeps_to_its_size():
    from iznet.errors import ModelError
    from iznet.models.nn2 import feature_side

    torch.manual_seed(0)
    gdc = create_model("nn4_small", input_size=112, head="gdc").eval()
    avg = create_model("nn4_small", input_size=112).eval()
    state = gdc.state_dict()
    assert tuple(state["head.pool.weight"].shape) == (gdc.num_features, 1, 4, 4) and feature_side(112) == 4
    avg.load_state_dict({k: v for k, v in state.items() if k != "head.pool.weight"})
    x = torch.randn(2, 3, 112, 112)
    with torch.no_grad():
        assert torch.allclose(gdc(x), avg(x), atol=1e-5)
        with pytest.raises(ModelError, match="input size"):
            gdc(torch.randn(2, 3, 96, 96))
    with pytest.raises(ModelError, match="head must be one of avg, gdc"):
        create_model("nn4_small", head="max")
