"""InceptionV3: torchvision-format weights load into the trunk strictly; the auxiliary head is optional."""

from __future__ import annotations

import pytest
import torch

from iznet.errors import ModelError
from iznet.models import create_model, model_info


@pytest.fixture(scope="module")
def torchvision_weights(tmp_path_factory):
    """A state dict saved from torchvision's own inception_v3 (random weights; aux head and 1000-way fc)."""
    from torchvision.models import inception_v3

    torch.manual_seed(0)
    tv = inception_v3(weights=None, aux_logits=True, init_weights=False)
    path = tmp_path_factory.mktemp("tv") / "inception_v3.pth"
    torch.save(tv.state_dict(), path)
    return path, tv.state_dict()


def test_loads_torchvision_state_dict_into_the_trunk(torchvision_weights):
    path, state = torchvision_weights
    model = create_model("inception_v3", weights_path=path)
    own = model.backbone.state_dict()
    assert torch.equal(own["Conv2d_1a_3x3.conv.weight"], state["Conv2d_1a_3x3.conv.weight"])
    assert torch.equal(own["Mixed_7c.branch_pool.bn.running_var"], state["Mixed_7c.branch_pool.bn.running_var"])
    report = model.load_report
    assert "fc.weight" in report["ignored"] and "AuxLogits.conv0.conv.weight" in report["ignored"]
    assert report["loaded"] == len(own)


def test_loads_aux_head_when_enabled(torchvision_weights):
    path, state = torchvision_weights
    model = create_model("inception_v3", weights_path=path, aux_logits=True)
    assert torch.equal(model.backbone.AuxLogits.conv1.conv.weight, state["AuxLogits.conv1.conv.weight"])
    assert model.load_report["ignored"] == ["AuxLogits.fc.bias", "AuxLogits.fc.weight", "fc.bias", "fc.weight"]


def test_incomplete_or_foreign_state_dict_is_refused(tmp_path, torchvision_weights):
    _, state = torchvision_weights
    partial = {k: v for k, v in state.items() if not k.startswith("Mixed_7c.branch3x3dbl_1")}
    partial["extra_layer.weight"] = torch.zeros(3)
    path = tmp_path / "partial.pth"
    torch.save(partial, path)
    with pytest.raises(ModelError) as e:
        create_model("inception_v3", weights_path=path)
    msg = str(e.value)
    assert "missing" in msg and "Mixed_7c.branch3x3dbl_1.conv.weight" in msg
    assert "unexpected" in msg and "extra_layer.weight" in msg


def test_forward_with_aux_in_training_only():
    with torch.device("meta"):
        meta = create_model("inception_v3", aux_logits=True)
        x = torch.zeros(2, 3, 299, 299)
        emb, aux = meta.train().forward_with_aux(x)
        assert emb.shape == (2, 128) and aux.shape == (2, 128)
        assert meta.eval().forward_with_aux(x)[1] is None
        assert create_model("inception_v3", input_size=160).input_size == 160
    assert model_info("inception_v3")["params"] < model_info("inception_v3", aux_logits=True)["params"]
