"""Our box IoU and NMS against torchvision's, and NMS against a plain loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from iznet.detect.ops import box_iou, nms


def _boxes(n, seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 100
    wh = torch.rand(n, 2, generator=g) * 40 + 1
    return torch.cat([xy, xy + wh], 1), torch.rand(n, generator=g)


@pytest.mark.parametrize("seed", range(4))
def test_match_torchvision(seed):
    ops = pytest.importorskip("torchvision.ops")
    b, s = _boxes(60, seed)
    torch.testing.assert_close(box_iou(b, b[:17]), ops.box_iou(b, b[:17]))
    for t in (0.0, 0.3, 0.5, 0.9):
        assert nms(b, s, t).tolist() == ops.nms(b, s, t).tolist()


def test_nms_against_a_loop_and_empty_input():
    b, s = _boxes(40, 9)
    order = sorted(range(40), key=lambda i: -float(s[i]))
    keep = []
    for i in order:
        if all(float(box_iou(b[i:i + 1], b[j:j + 1])) <= 0.4 for j in keep):
            keep.append(i)
    assert nms(b, s, 0.4).tolist() == keep
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).tolist() == []
    assert np.isclose(float(box_iou(torch.tensor([[0., 0, 2, 2]]), torch.tensor([[1., 1, 3, 3]]))), 1 / 7)
