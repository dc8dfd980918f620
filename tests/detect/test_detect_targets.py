import pytest
import torch

from iznet.detect.targets import (DEFAULT_ANCHORS, anchor_preference, decode, encode_targets,
                                  encode_targets_with_stats)


def test_square_and_tall_faces_go_to_both_anchors():
    boxes = torch.tensor([[10.0, 10.0, 50.0, 50.0],      # 1:1 -> anchor 0, cell (0, 0)
                          [100.0, 100.0, 140.0, 146.0]])  # 40x46 = 1:1.15 -> anchor 1, cell (3, 3)
    t = encode_targets([boxes], grid=13, image_size=416)
    assert t.shape == (1, 13, 13, 2, 5)
    assert t[0, 0, 0, 0, 0] == 1 and t[0, 0, 0, 1, 0] == 0
    assert t[0, 3, 3, 1, 0] == 1 and t[0, 3, 3, 0, 0] == 0
    assert t[..., 0].sum() == 2
    # x, y are offsets inside the cell; w, h relative to the image
    assert t[0, 3, 3, 1, 1:].tolist() == pytest.approx([120 / 32 - 3, 123 / 32 - 3, 40 / 416, 46 / 416])


def test_anchor_preference_by_aspect_ratio():
    assert anchor_preference(10, 10, DEFAULT_ANCHORS) == [0, 1]
    assert anchor_preference(10, 13, DEFAULT_ANCHORS) == [1, 0]
    assert anchor_preference(13, 10, DEFAULT_ANCHORS) == [0, 1]


def test_same_cell_takes_next_free_anchor_then_drops():
    # three square faces centred in cell (1, 1) of a 4x4 grid on 128 px: 32 px cells
    boxes = torch.tensor([[36.0, 36.0, 60.0, 60.0], [40.0, 40.0, 50.0, 50.0], [38.0, 38.0, 56.0, 56.0]])
    t, dropped = encode_targets_with_stats([boxes], grid=4, image_size=128)
    assert dropped == 1
    # largest first: the 24 px face keeps its preferred anchor 0, the 18 px one gets anchor 1
    assert t[0, 1, 1, 0, 3].item() == pytest.approx(24 / 128)
    assert t[0, 1, 1, 1, 3].item() == pytest.approx(18 / 128)


def test_empty_and_degenerate_boxes():
    t = encode_targets([torch.zeros(0, 4), torch.tensor([[5.0, 5.0, 5.0, 9.0]])], grid=3, image_size=15)
    assert t.shape == (2, 3, 3, 2, 5) and t.sum() == 0


def _random_boxes(gen, grid, image_size, per_image):
    """Boxes whose centres fall in distinct cells, so none is dropped."""
    cell = image_size / grid
    cells = torch.randperm(grid * grid, generator=gen)[:per_image]
    out = []
    for c in cells.tolist():
        r, col = divmod(c, grid)
        cx = (col + torch.rand(1, generator=gen).item()) * cell
        cy = (r + torch.rand(1, generator=gen).item()) * cell
        w = 4 + torch.rand(1, generator=gen).item() * image_size / 3
        h = w * (0.8 + 0.6 * torch.rand(1, generator=gen).item())
        out.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    return torch.tensor(out)


@pytest.mark.parametrize("grid,image_size,anchors", [(13, 416, DEFAULT_ANCHORS), (4, 128, DEFAULT_ANCHORS),
                                                      (3, 15, ((1.0, 1.0), (1.0, 1.5), (1.5, 1.0)))])
def test_encode_decode_round_trip(grid, image_size, anchors):
    gen = torch.Generator().manual_seed(grid)
    boxes_list = [_random_boxes(gen, grid, image_size, k) for k in (1, 3, 5, 0)]
    # keep boxes inside the image (encode clips to it)
    boxes_list = [b.clamp(0, image_size) for b in boxes_list]
    t, dropped = encode_targets_with_stats(boxes_list, grid=grid, anchors=anchors, image_size=image_size)
    assert dropped == 0
    boxes, scores = decode(t, image_size)
    assert boxes.shape == (4, grid * grid * len(anchors), 4)
    for i, gt in enumerate(boxes_list):
        got = boxes[i][scores[i] == 1]
        assert got.shape[0] == gt.shape[0]
        if len(gt):
            # same set of boxes, in any order
            order_got = torch.argsort(got[:, 0] * 1e4 + got[:, 1])
            order_gt = torch.argsort(gt[:, 0] * 1e4 + gt[:, 1])
            assert torch.allclose(got[order_got], gt[order_gt], atol=1e-3)


def test_decode_rejects_bad_shape():
    with pytest.raises(ValueError, match="S, S, B, 5"):
        decode(torch.zeros(1, 13, 12, 2, 5))


def test_offsets_in_unit_range():
    gen = torch.Generator().manual_seed(0)
    t = encode_targets([_random_boxes(gen, 13, 416, 20)], image_size=416)
    obj = t[..., 0] == 1
    assert obj.sum() == 20
    assert ((t[..., 1:3][obj] >= 0) & (t[..., 1:3][obj] < 1)).all()
    assert ((t[..., 3:5][obj] > 0) & (t[..., 3:5][obj] <= 1)).all()
