"""Test-time zoom views of a network embedder (iznet.models.preprocess.zoom_view, NetworkEmbedder(zooms=...))."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from iznet.errors import ModelError
from iznet.models import create_model
from iznet.models.preprocess import check_zooms, zoom_view
from iznet.recognize.embedder import NetworkEmbedder, load_embedder
from iznet.recognize.tags import embedder_tag


@pytest.mark.parametrize("side,zoom", [(112, 0.88), (112, 0.92), (64, 0.75), (63, 0.9)])
def test_a_zoom_view_is_the_centre_square_stretched(side, zoom):
    """The kept square is round(side * zoom) pixels at offset (side - keep) // 2: constant there and different
    everywhere else, the view is that constant throughout."""
    keep = int(round(side * zoom))
    o = (side - keep) // 2
    x = torch.full((2, 3, side, side), -1.0)
    x[..., o:o + keep, o:o + keep] = 0.25
    v = zoom_view(x, zoom)
    assert v.shape == x.shape
    torch.testing.assert_close(v, torch.full_like(x, 0.25))
    x[..., o - 1, :] = 5.0  # a row just outside the square does not reach the view
    torch.testing.assert_close(zoom_view(x, zoom), torch.full_like(x, 0.25))


def test_a_zoom_view_against_a_pixel_loop():
    """Bilinear with half-pixel centres, written out per output pixel."""
    side, zoom = 10, 0.8
    x = torch.arange(2 * side * side, dtype=torch.float64).reshape(1, 2, side, side) ** 1.5
    keep, o = 8, 1
    crop = x[0, :, o:o + keep, o:o + keep]
    want = torch.zeros(2, side, side, dtype=torch.float64)
    scale = keep / side
    for i in range(side):
        for j in range(side):
            sy = min(max((i + 0.5) * scale - 0.5, 0.0), keep - 1)
            sx = min(max((j + 0.5) * scale - 0.5, 0.0), keep - 1)
            y0, x0 = int(np.floor(sy)), int(np.floor(sx))
            y1, x1 = min(y0 + 1, keep - 1), min(x0 + 1, keep - 1)
            wy, wx = sy - y0, sx - x0
            want[:, i, j] = ((1 - wy) * (1 - wx) * crop[:, y0, x0] + (1 - wy) * wx * crop[:, y0, x1]
                             + wy * (1 - wx) * crop[:, y1, x0] + wy * wx * crop[:, y1, x1])
    torch.testing.assert_close(zoom_view(x, zoom)[0], want)


@pytest.mark.parametrize("bad", [[1.0], [0.5], [1.2], ["x"], 0.9])
def test_bad_zooms_are_refused_by_name(bad):
    with pytest.raises(ModelError, match="somewhere"):
        check_zooms(bad, "somewhere")


def _tiny(seed: int = 0):
    torch.manual_seed(seed)
    return create_model("nn4_small", input_size=64).eval()


def test_the_embedding_adds_every_views_unit_embedding():
    model = _tiny()
    crops = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (3, 3, 64, 64), dtype=np.uint8))
    emb = NetworkEmbedder(model, device="cpu", tta=True, zooms=(0.88,))
    got = emb.embed(crops)
    from iznet.models import preprocess

    x = preprocess(crops, 64)
    with torch.no_grad():
        parts = [F.normalize(model(v), dim=1) for z in (None, 0.88) for v in
                 ((x, torch.flip(x, dims=[3])) if z is None else (zoom_view(x, z), torch.flip(zoom_view(x, z), dims=[3])))]
    want = F.normalize(sum(parts), dim=1).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert not np.allclose(got, NetworkEmbedder(model, device="cpu", tta=True).embed(crops), atol=1e-3)


def test_zooms_change_the_gallery_tag_and_no_zooms_keep_it(tmp_path):
    from iznet.utils.checkpoint import load_checkpoint, save_checkpoint

    model = _tiny(1)
    plain = NetworkEmbedder(model, device="cpu", tta=True, name="nn4_small")
    zoomed = NetworkEmbedder(model, device="cpu", tta=True, zooms=(0.88,), name="nn4_small")
    assert embedder_tag(plain) != embedder_tag(zoomed)
    assert embedder_tag(zoomed) != embedder_tag(NetworkEmbedder(model, device="cpu", tta=True, zooms=(0.9,)))
    ck = save_checkpoint(tmp_path / "e.pt", kind="embedder", model="nn4_small", model_kwargs={"input_size": 64},
                         state_dict=model.state_dict(), meta={"input_size": 64, "tta": True})
    assert embedder_tag(load_embedder(str(ck), device="cpu")) == embedder_tag(plain)  # no key, no views
    meta = dict(load_checkpoint(ck)["meta"], tta_zooms=[0.88])
    ck2 = save_checkpoint(tmp_path / "z.pt", kind="embedder", model="nn4_small", model_kwargs={"input_size": 64},
                          state_dict=model.state_dict(), meta=meta)
    loaded = load_embedder(str(ck2), device="cpu")
    assert loaded.zooms == (0.88,) and embedder_tag(loaded) == embedder_tag(zoomed)
    bad = save_checkpoint(tmp_path / "bad.pt", kind="embedder", model="nn4_small", model_kwargs={"input_size": 64},
                          state_dict=model.state_dict(), meta=dict(meta, tta_zooms=[1.5]))
    with pytest.raises(ModelError, match="bad.pt: meta tta_zooms"):
        load_embedder(str(bad), device="cpu")
