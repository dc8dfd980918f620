"""Weight averaging (iznet.engine.soup) against plain loops, and batch-norm re-estimation against direct statistics."""

import pytest
import torch
from torch import nn

from iznet.engine.soup import average_state_dicts, recompute_batchnorm, soup_meta
from iznet.errors import ModelError


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5),
                         nn.BatchNorm1d(5))


def test_average_matches_a_loop_over_every_element():
    sds = [_net(s).state_dict() for s in range(3)]
    for i, sd in enumerate(sds):  # distinct statistics and counters, so averaging them is visible
        sd["1.running_mean"] += i
        sd["1.num_batches_tracked"] += 10 * (i + 1)
    w = [0.2, 0.3, 0.5]
    out = average_state_dicts(sds, w)
    for k, v in out.items():
        if k.endswith("num_batches_tracked"):
            assert v.item() == sds[0][k].item()
            continue
        assert v.dtype == torch.float32
        flat = [sd[k].flatten().tolist() for sd in sds]
        expect = [sum(w[j] * flat[j][i] for j in range(3)) for i in range(len(flat[0]))]
        assert torch.allclose(v.flatten(), torch.tensor(expect), atol=1e-6), k


def test_weight_one_gives_the_checkpoint_back_and_half_float_is_read():
    a, b = _net(0).state_dict(), _net(1).state_dict()
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in a.items()}
    out = average_state_dicts([half, b], [1.0, 0.0])
    for k in a:
        assert torch.equal(out[k], half[k].float() if a[k].is_floating_point() else a[k])


@pytest.mark.parametrize("weights, match", [([0.5, 0.6], "sum to 1"), ([1.5, -0.5], "non-negative"),
                                            ([1.0], "2 weights")])
def test_bad_weights_are_refused(weights, match):
    with pytest.raises(ModelError, match=match):
        average_state_dicts([_net(0).state_dict(), _net(1).state_dict()], weights)


def test_other_architectures_are_refused_by_name():
    a = _net(0).state_dict()
    b = dict(a)
    b["4.weight"] = torch.zeros(6, 144)
    with pytest.raises(ModelError, match="'4.weight' of checkpoint run_b"):
        average_state_dicts([a, b], [0.5, 0.5], names=["run_a", "run_b"])
    c = {k: v for k, v in a.items() if k != "4.bias"}
    with pytest.raises(ModelError, match="missing"):
        average_state_dicts([a, c], [0.5, 0.5])
    with pytest.raises(ModelError, match="at least two"):
        average_state_dicts([a], [1.0])


def test_batchnorm_statistics_are_the_average_of_the_batches():
    net = _net(0)
    net[1].momentum = 0.3
    torch.manual_seed(5)
    batches = [torch.randn(6, 3, 8, 8) * 2 + 1 for _ in range(4)]
    seen = recompute_batchnorm(net, batches)
    assert seen == 24 and not net.training and net[1].momentum == 0.3
    conv = net[0]
    with torch.no_grad():
        feats = [conv(x) for x in batches]
    mean = torch.stack([f.mean(dim=(0, 2, 3)) for f in feats]).mean(0)
    var = torch.stack([f.transpose(0, 1).flatten(1).var(dim=1, unbiased=True) for f in feats]).mean(0)
    assert torch.allclose(net[1].running_mean, mean, atol=1e-5)
    assert torch.allclose(net[1].running_var, var, atol=1e-4)


def test_batchnorm_needs_layers_and_images():
    with pytest.raises(ModelError, match="no batch-norm"):
        recompute_batchnorm(nn.Linear(3, 2), [torch.zeros(1, 3)])
    net = _net(0)
    before = net[1].momentum
    with pytest.raises(ModelError, match="no images"):
        recompute_batchnorm(net, [])
    assert net[1].momentum == before


def test_meta_keeps_the_training_record_only_of_a_whole_ingredient():
    run = {"input_size": 112, "summary": {"data": "pack_a.pt"}, "source_run": "runs/a", "step": 5,
           "calibration": {"threshold": 1.0}, "weights_dtype": "float16"}
    start = {"input_size": 112, "summary": {"data": "pack_b.pt"}, "source_run": "runs/b",
             "calibration": {"threshold": 1.1}}
    alone = soup_meta([start, run], [0.0, 1.0], ["b.pt", "a.pt"])
    assert alone["summary"] == {"data": "pack_a.pt"} and alone["source_run"] == "runs/a" and alone["step"] == 5
    assert "calibration" not in alone and "weights_dtype" not in alone
    assert alone["soup"]["ingredients"] == [{"weight": 0.0, "checkpoint": "b.pt"}, {"weight": 1.0, "checkpoint": "a.pt"}]
    mix = soup_meta([start, run], [0.5, 0.5], ["b.pt", "a.pt"])
    assert mix["input_size"] == 112
    assert not {"summary", "source_run", "step", "calibration"} & set(mix)
