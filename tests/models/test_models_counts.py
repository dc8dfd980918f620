"""Parameter and multiply-add counts against FaceNet's Tables 1 and 2 (models built on the meta device)."""

from __future__ import annotations

import pytest
import torch

from iznet.models import count_params, create_model, model_info, model_layers

# FaceNet Table 2, per row: (params, FLOPS) as printed in the paper.
TABLE2 = {
    "conv1": ("9K", "119M"), "inception_2": ("115K", "360M"), "inception_3a": ("164K", "128M"),
    "inception_3b": ("228K", "179M"), "inception_3c": ("398K", "108M"), "inception_4a": ("545K", "107M"),
    "inception_4b": ("595K", "117M"), "inception_4c": ("654K", "128M"), "inception_4d": ("722K", "142M"),
    "inception_4e": ("717K", "56M"), "inception_5a": ("1.6M", "78M"), "inception_5b": ("1.6M", "78M"),
    "fc": ("131K", "0.1M"),
}
# FaceNet Table 1, the rows with parameters: (params, FLOPS) as printed.
TABLE1 = {
    "conv1": ("9K", "115M"), "conv2a": ("4K", "13M"), "conv2": ("111K", "335M"), "conv3a": ("37K", "29M"),
    "conv3": ("664K", "521M"), "conv4a": ("148K", "29M"), "conv4": ("885K", "173M"), "conv5a": ("66K", "13M"),
    "conv5": ("590K", "116M"), "conv6a": ("66K", "13M"), "conv6": ("590K", "116M"), "fc1": ("103M", "103M"),
    "fc2": ("34M", "34M"), "fc7128": ("524K", "0.5M"),
}
_UNITS = {"K": 1e3, "M": 1e6, "B": 1e9}


def _matches_printed(value: float, printed: str, tol: float) -> bool:
    """|value - printed| within ``tol`` relative, or within the rounding of the printed digits."""
    digits, unit = printed[:-1], _UNITS[printed[-1]]
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    target = float(digits) * unit
    half_last_digit = 0.5 * unit * 10 ** -decimals
    return abs(value - target) <= max(tol * target, half_last_digit)


def _within(value: float, target: float, tol: float) -> bool:
    return abs(value - target) <= tol * target


@pytest.mark.parametrize("name, params, flops", [("nn1", 140e6, 1.6e9), ("nn2", 7.5e6, 1.6e9)])
def test_totals_match_the_paper_within_10_percent(name, params, flops):
    info = model_info(name)
    assert _within(info["params"], params, 0.10), info
    assert _within(info["flops"], flops, 0.10), info


@pytest.mark.parametrize("name, table, tol_params, tol_flops", [("nn1", TABLE1, 0.05, 0.05), ("nn2", TABLE2, 0.02, 0.02)])
def test_each_row_matches_the_paper(name, table, tol_params, tol_flops):
    # rows with neither weights nor multiply-adds outside batch norm (our BN before the L2 norm) have no
    # counterpart in the paper's tables
    rows = {r["name"].split(".")[-1]: r for r in model_layers(name) if r["params_no_norm"] or r["flops"]}
    assert set(rows) == set(table)
    for key, (p, f) in table.items():
        # the paper's networks had no batch norm: compare the weights only
        assert _matches_printed(rows[key]["params_no_norm"], p, tol_params), (key, rows[key])
        assert _matches_printed(rows[key]["flops"], f, tol_flops), (key, rows[key])


def test_nn3_and_nn4_flops():
    nn2, nn3, nn4 = (model_info(n)["flops"] for n in ("nn2", "nn3", "nn4"))
    # NN3 is NN2 at 160 px: the maps shrink by (160/224)^2 up to rounding of odd sizes
    assert _within(nn3, nn2 * (160 / 224) ** 2, 0.05)
    assert _within(nn4, 285e6, 0.05)  # section 4: NN4 is 285M FLOPS


def test_nn4_has_no_5x5_in_5a_5b_and_nn4_small_is_half_width():
    with torch.device("meta"):
        nn4 = create_model("nn4")
        small = create_model("nn4_small")
        nn2 = create_model("nn2", input_size=96)
    for name in ("inception_5a", "inception_5b"):
        assert getattr(nn4.features, name).branch5x5 is None
        assert getattr(nn2.features, name).branch5x5 is not None
    assert nn4.features.inception_4e.branch5x5 is not None
    assert nn4.num_features == 896 and small.num_features == 448
    ratio = count_params(small) / count_params(nn4)
    assert 0.2 < ratio < 0.3  # halving both in and out channels quarters the weights


def test_bn_is_counted_and_can_be_turned_off():
    with torch.device("meta"):
        with_bn = create_model("nn2")
        without = create_model("nn2", bn=False)
    # without BN the convolutions get biases: one per output channel, BN adds two per channel; the BN
    # before the L2 norm (128 channels) has no bias counterpart
    bn_params = count_params(with_bn) - count_params(with_bn, exclude_norm=True)
    bias_params = count_params(without) - count_params(with_bn, exclude_norm=True)
    assert bn_params == 2 * bias_params + 2 * 128 and bias_params > 0
