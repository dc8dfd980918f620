import pytest
import torch

from iznet.detect.targets import DEFAULT_ANCHORS, encode_targets, encode_targets_with_stats
from iznet.detect.toy import (TOY_GRID, TOY_SIZE, ToyConfig, ToyNet, _training_batch, evaluate_toy, image_solved,
                              make_rectangles, match_cell_targets, shared_cell, train_toy)


def test_rectangles_follow_the_rules():
    images, boxes = make_rectangles(200, torch.Generator().manual_seed(0))
    assert images.shape == (200, 1, 15, 15)
    counts = [len(b) for b in boxes]
    assert min(counts) == 1 and max(counts) == 3
    for img, b in zip(images, boxes):
        assert ((b[:, 2:] - b[:, :2]) >= 3).all() and ((b[:, 2:] - b[:, :2]) <= 9).all()
        assert (b >= 0).all() and (b <= 15).all()
        for x1, y1, x2, y2 in b.int().tolist():  # every rectangle is visible in the image
            assert img[0, y1:y2, x1:x2].min() >= 0.3
    # no cell holds more rectangles than anchors: encoding drops none
    assert encode_targets_with_stats(boxes, grid=3, image_size=15)[1] == 0


def test_additive_render_shows_overlaps():
    g = torch.Generator().manual_seed(1)
    images, boxes = make_rectangles(300, g)
    occl, _ = make_rectangles(300, torch.Generator().manual_seed(1), render="occlude")
    assert occl.max() <= 1.0 and images.max() > 1.0  # overlaps add up only in the additive render
    for img, b in zip(images, boxes):
        for x1, y1, x2, y2 in b.int().tolist():
            # a rectangle's own level (its darkest pixel) is within the level range
            assert 0.3 <= img[0, y1:y2, x1:x2].min() <= 0.7 + 1e-6
    with pytest.raises(ValueError):
        make_rectangles(1, render="paint")


def test_image_solved_rules():
    gt = torch.tensor([[0.0, 0, 4, 4], [8.0, 8, 14, 14]])
    assert image_solved(gt.clone(), gt)
    assert not image_solved(gt[:1], gt)                                       # one missed
    assert not image_solved(torch.cat([gt, torch.tensor([[5.0, 0, 9, 4]])]), gt)  # a false positive
    assert not image_solved(gt + torch.tensor([2.0, 0, 2, 0]), gt)            # IoU 0.33 < 0.5 for the first
    assert not image_solved(torch.stack([gt[0], gt[0]]), gt)                  # one box cannot match twice


def test_toynet_is_table_1():
    m = ToyNet()
    assert [l.out_channels for l in m.features if isinstance(l, torch.nn.Conv2d)] == [128, 128, 128]
    assert m.fc.out_features == 90
    assert m(torch.zeros(2, 1, 15, 15)).shape == (2, 3, 3, 2, 5)


def test_small_toy_model_learns():
    """A narrow model on single rectangles learns well above chance (0%) in 300 steps."""
    cfg = ToyConfig(width=16, steps=300, batch_size=32, lr=3e-3, max_rects=1)
    model, summary = train_toy(cfg)
    assert summary["last_losses"]["loss"] < 2.0
    assert evaluate_toy(model, 100, max_rects=1) >= 0.4


def _raw_for(target: torch.Tensor) -> torch.Tensor:
    """Raw outputs whose activation reproduces ``target`` (conf, x, y through the logit; √w, √h as is)."""
    raw = torch.zeros_like(target)
    p = target[..., :3].clamp(1e-4, 1 - 1e-4)
    raw[..., :3] = torch.log(p / (1 - p))
    raw[..., 3:] = target[..., 3:].sqrt()
    return raw


def test_match_cell_targets_follows_the_predictions():
    # two rectangles centred in the top-left cell, one alone in the centre cell
    boxes = [torch.tensor([[0.0, 0, 6, 6], [1.0, 1, 5, 8], [6.0, 6, 9, 9]])]
    target = encode_targets_with_stats(boxes, grid=3, image_size=15)[0]
    assert target[0, 0, 0, :, 0].tolist() == [1.0, 1.0]
    swapped = target.clone()
    swapped[0, 0, 0] = target[0, 0, 0, [1, 0]]
    # predictions in the swapped order: the crowded cell's targets follow them
    assert torch.equal(match_cell_targets(_raw_for(swapped), target), swapped)
    # predictions in the encoded order, or uninformative ones: nothing moves
    assert torch.equal(match_cell_targets(_raw_for(target), target), target)
    assert torch.equal(match_cell_targets(torch.zeros_like(target), target), target)
    # a single rectangle stays with its anchor even when the other predictor fits it better
    single = target.clone()
    single[0, 1, 1] = target[0, 1, 1, [1, 0]]
    assert torch.equal(match_cell_targets(_raw_for(single), target), target)
    # ... unless every cell with a rectangle is matched (YOLOv1's rule)
    assert torch.equal(match_cell_targets(_raw_for(single), target, min_objects=1), single)
    with pytest.raises(ValueError):
        match_cell_targets(torch.zeros(1, 3, 3, 2, 5), torch.zeros(1, 3, 3, 2, 4))
    with pytest.raises(ValueError):
        match_cell_targets(torch.zeros_like(target), target, min_objects=0)


def test_train_toy_options():
    for assign in ("match", "match-all"):
        cfg = ToyConfig(width=8, steps=5, batch_size=8, assign=assign, ema_decay=0.9)
        model, summary = train_toy(cfg)
        assert isinstance(model, ToyNet) and not model.training
        assert summary["config"]["assign"] == assign and summary["config"]["ema_decay"] == 0.9
    with pytest.raises(ValueError):
        train_toy(ToyConfig(width=8, steps=1, assign="nearest"))
    with pytest.raises(ValueError):
        train_toy(ToyConfig(width=8, steps=1, ema_decay=1.0))


def test_shared_cell_agrees_with_the_encoded_targets():
    _, boxes = make_rectangles(600, torch.Generator().manual_seed(5))
    encoded = encode_targets(boxes, TOY_GRID, DEFAULT_ANCHORS, TOY_SIZE)[..., 0].sum(-1) >= 2
    expected = encoded.flatten(1).any(1).tolist()
    assert shared_cell(boxes) == expected
    assert 0 < sum(expected) < 100  # rare in fresh images (about 6%)


def test_crowd_oversamples_shared_cells():
    cfg = ToyConfig(batch_size=40, crowd=0.5)
    images, boxes = _training_batch(cfg, torch.Generator().manual_seed(0))
    assert images.shape == (40, 1, TOY_SIZE, TOY_SIZE) and len(boxes) == 40
    flags = shared_cell(boxes)
    assert all(flags[:20]) and sum(flags) >= 20
    for img, b in zip(images[:20], boxes[:20]):  # each box still lies on its own lit rectangle
        for x1, y1, x2, y2 in b.int().tolist():
            assert (img[0, y1:y2, x1:x2] > 0).all()
    plain = _training_batch(ToyConfig(batch_size=40), torch.Generator().manual_seed(0))
    assert sum(shared_cell(plain[1])) < 20
    with pytest.raises(ValueError, match="crowd"):
        train_toy(ToyConfig(width=8, steps=1, crowd=1.5))
    with pytest.raises(ValueError, match="max_rects"):
        train_toy(ToyConfig(width=8, steps=1, crowd=0.2, max_rects=1))
