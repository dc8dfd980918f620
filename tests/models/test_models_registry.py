"""The registry contract: names, errors, keyword overrides, weights files, model_info, the CLI table."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from iznet.errors import ModelError
from iznet.models import create_model, list_models, model_info, register_model
from iznet.models import registry as registry_module

EXPECTED = {"nn1": 220, "nn2": 224, "nn3": 160, "nn4": 96, "nn4_small": 96, "inception_v3": 299}


def test_registered_names_and_pattern():
    assert set(EXPECTED) <= set(list_models())
    assert list_models("nn4*") == ["nn4", "nn4_small"]
    assert list_models("nothing*") == []


def test_unknown_name_lists_known_models_and_suggests():
    with pytest.raises(ModelError) as e:
        create_model("nn22")
    msg = str(e.value)
    assert "Did you mean 'nn2'" in msg
    for name in EXPECTED:
        assert name in msg


def test_unknown_keyword_is_a_model_error():
    with pytest.raises(ModelError, match="does not take"):
        create_model("nn4_small", depth=3)


def test_register_model_decorator_and_duplicates(monkeypatch):
    monkeypatch.setattr(registry_module, "_REGISTRY", dict(registry_module._REGISTRY))

    @register_model
    def tiny_test_net(**kw):
        return nn.Linear(2, 2)

    assert "tiny_test_net" in list_models()
    assert isinstance(create_model("tiny_test_net"), nn.Linear)

    assert register_model(tiny_test_net) is tiny_test_net  # the same builder again (a reload) is fine

    def other_builder(**kw):
        return nn.Identity()

    other_builder.__name__ = "tiny_test_net"  # a different builder under a taken name
    with pytest.raises(ModelError, match="twice"):
        register_model(other_builder)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_model_info_native_sizes(name):
    info = model_info(name)
    assert set(info) == {"name", "input_size", "params", "flops"}
    assert info["input_size"] == EXPECTED[name]
    assert info["params"] > 0 and info["flops"] > 0


def test_input_size_override_nn2_at_112():
    torch.manual_seed(0)
    m = create_model("nn2", input_size=112).eval()
    assert m.input_size == 112
    with torch.no_grad():
        assert m(torch.randn(1, 3, 112, 112)).shape == (1, 128)
    assert model_info("nn2", input_size=112)["flops"] < model_info("nn2")["flops"] / 3


def test_nn1_sizes_its_fc_to_the_input_and_rejects_other_sides():
    with pytest.raises(ModelError, match="at least 33"):
        create_model("nn1", input_size=32)
    with torch.device("meta"):
        m = create_model("nn1", input_size=200)
        assert m.forward_features(torch.zeros(1, 3, 200, 200)).shape == (1, 256, 7, 7)
        assert m.head.fc1.linear.in_features == 256 * 7 * 7
        with pytest.raises(ModelError, match="193..224"):
            m(torch.zeros(1, 3, 96, 96))
    small = create_model("nn1", input_size=96)  # CPU stand-in: a 3x3 map, a smaller fc1
    assert small.head.fc1.linear.in_features == 256 * 3 * 3
    small.eval()
    with torch.no_grad():
        assert small(torch.randn(2, 3, 96, 96)).shape == (2, 128)
    with pytest.raises(ModelError, match="built for 96 px"):
        small(torch.zeros(1, 3, 220, 220))


def test_bad_input_shape_is_a_model_error():
    m = create_model("nn4_small")
    with pytest.raises(ModelError, match=r"\(B, 3, H, W\)"):
        m(torch.zeros(1, 1, 96, 96))
    with pytest.raises(ModelError, match="preprocess"):
        m(torch.zeros(1, 3, 96, 96, dtype=torch.uint8))


def test_pretrained_without_weights_raises_and_downloads_nothing():
    with pytest.raises(ModelError, match="weights_path"):
        create_model("nn2", pretrained=True)
    with pytest.raises(ModelError, match="never downloads"):
        create_model("inception_v3", pretrained=True)


def test_weights_path_roundtrip_and_mismatch(tmp_path):
    torch.manual_seed(0)
    src = create_model("nn4_small").eval()
    path = tmp_path / "w.pt"
    torch.save(src.state_dict(), path)
    dst = create_model("nn4_small", weights_path=path).eval()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        assert torch.equal(src(x), dst(x))
    # an iznet checkpoint holding the state dict works too
    from iznet.utils.checkpoint import save_checkpoint

    ckpt = save_checkpoint(tmp_path / "c.pt", kind="embedder", model="nn4_small", model_kwargs={},
                           state_dict=src.state_dict())
    with torch.no_grad():
        assert torch.equal(create_model("nn4_small", weights_path=ckpt).eval()(x), src(x))
    with pytest.raises(ModelError, match="shape mismatch"):
        create_model("nn4", weights_path=path)
    with pytest.raises(ModelError, match="does not exist"):
        create_model("nn4_small", weights_path=tmp_path / "missing.pt")


def test_cli_models_table_and_json(capsys):
    from iznet.cli.models_cmds import models_cmd

    models_cmd(pattern="nn4*", as_json=True, layers=False)
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["nn4", "nn4_small"]
    assert rows[0] == model_info("nn4")
    models_cmd(pattern="nn2", as_json=False, layers=True)
    out = capsys.readouterr().out
    assert "nn2" in out and "224px" in out and "inception_3c" in out
    with pytest.raises(ModelError, match="no model matches"):
        models_cmd(pattern="zzz*", as_json=False, layers=False)
