"""Embedders: the raw-pixel and eigenface baselines, the network wrapper, load_embedder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from iznet.utils.checkpoint import save_checkpoint
from iznet.errors import ModelError
from iznet.recognize.embedder import (EnsembleEmbedder, NetworkEmbedder, PCAEmbedder, RawPixelEmbedder,
                                     load_embedder)


def _images(n=12, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)


def test_raw_pixels_shape_norm_and_brightness_invariance():
    x = _images()
    e = RawPixelEmbedder(size=8).embed(x, batch_size=5)
    assert e.shape == (12, 64) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    brighter = (x.float() * 0.5 + 60).round().to(torch.uint8)  # affine change of brightness and contrast
    e2 = RawPixelEmbedder(size=8).embed(brighter)
    assert np.min(np.sum(e * e2, axis=1)) > 0.99
    assert RawPixelEmbedder(size=8, gray=False).embed(x).shape == (12, 192)


def test_raw_pixels_manual_value():
    x = torch.zeros(1, 3, 2, 2, dtype=torch.uint8)
    x[0, :, 0, 0] = 255  # one white pixel in a black gray image
    e = RawPixelEmbedder(size=2).embed(x)[0]
    v = np.array([1.0, 0, 0, 0]) - 0.25
    np.testing.assert_allclose(e, v / np.linalg.norm(v), atol=1e-6)


def test_pca_fit_returns_copy_and_matches_numpy_svd():
    x = _images(n=30, size=8, seed=1)
    base = PCAEmbedder(n_components=5, size=8)
    assert base.needs_fit
    with pytest.raises(ModelError, match="not fitted"):
        base.embed(x)
    fitted = base.fit(x)
    assert base.pca is None and fitted.pca is not None and fitted.dim == 5
    e = fitted.embed(x)
    # reference: gray pixels, centre, top-5 right singular vectors, project, L2-normalise
    xf = x.float() / 255
    g = (0.299 * xf[:, 0] + 0.587 * xf[:, 1] + 0.114 * xf[:, 2]).flatten(1).double().numpy()
    c = g - g.mean(0)
    _, _, vt = np.linalg.svd(c, full_matrices=False)
    ref = c @ vt[:5].T
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    # components are defined up to sign: compare distance matrices
    d = np.linalg.norm(e[:, None] - e[None], axis=2)
    dref = np.linalg.norm(ref[:, None] - ref[None], axis=2)
    np.testing.assert_allclose(d, dref, atol=1e-4)


def test_pca_caps_components_and_whitens():
    x = _images(n=6, size=8, seed=2)
    f = PCAEmbedder(n_components=128, size=8, whiten=True).fit(x)
    assert f.dim == 5  # at most N - 1 informative components
    e = f.embed(x)
    assert e.shape == (6, 5)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)


def test_pca_centre_crop_changes_the_pixels_used():
    x = _images(n=10, size=16, seed=3)
    x2 = x.clone()
    x2[:, :, :2, :] = 0  # change only the border
    f = PCAEmbedder(n_components=3, size=8, crop=0.5).fit(x)
    np.testing.assert_allclose(f.embed(x), f.embed(x2), atol=1e-6)


class _Tiny(nn.Module):
    input_size = 8
    embedding_dim = 4

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3 * 8 * 8, 4)

    def forward(self, x):
        assert x.is_floating_point() and x.shape[-1] == 8 and x.min() >= -1 and x.max() <= 1
        return self.fc(x.flatten(1))


def test_network_embedder_tta_and_mode():
    m = _Tiny().train()
    x = _images(n=5, size=12)
    emb = NetworkEmbedder(m, device="cpu").embed(x)
    assert emb.shape == (5, 4) and m.training  # the caller's train mode is restored
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    from iznet.models import preprocess

    with torch.no_grad():
        p = preprocess(x, 8)
        a = nn.functional.normalize(m(p), dim=1)
        b = nn.functional.normalize(m(torch.flip(p, dims=[3])), dim=1)
    ref = nn.functional.normalize(a + b, dim=1).numpy()
    tta = NetworkEmbedder(m, device="cpu", tta=True).embed(x)
    np.testing.assert_allclose(tta, ref, atol=1e-5)
    assert not np.allclose(tta, emb, atol=1e-3)


def test_embed_rejects_float_images():
    with pytest.raises(ModelError, match="uint8"):
        RawPixelEmbedder().embed(torch.zeros(2, 3, 8, 8))


def test_load_embedder_baselines():
    assert isinstance(load_embedder("raw"), RawPixelEmbedder)
    assert load_embedder("raw:24").size == 24
    p = load_embedder("pca:64")
    assert isinstance(p, PCAEmbedder) and p.n_components == 64 and not p.whiten
    p = load_embedder("pca:32,whiten=true,size=48,crop=0.8")
    assert (p.n_components, p.whiten, p.size, p.crop) == (32, True, 48, 0.8)
    with pytest.raises(ModelError, match="unknown option"):
        load_embedder("pca:32,depth=3")
    with pytest.raises(ModelError, match="unknown embedder"):
        load_embedder("no_such_model")
    with pytest.raises(ModelError, match="does not exist"):
        load_embedder("runs/missing.pt")


def test_load_embedder_untrained_model_is_flagged():
    e = load_embedder("nn4_small", device="cpu")
    assert isinstance(e, NetworkEmbedder) and e.trained is False and e.input_size == 96


def test_load_embedder_checkpoint_roundtrip(tmp_path):
    from iznet.models import create_model

    m = create_model("nn4_small")
    path = save_checkpoint(tmp_path / "e.pt", kind="embedder", model="nn4_small", model_kwargs={},
                           state_dict=m.state_dict(), meta={"tta": True, "input_size": 64})
    e = load_embedder(str(path), device="cpu")
    assert e.trained and e.tta and e.input_size == 64 and "nn4_small" in e.name
    loaded = e.model.state_dict()
    assert all(torch.equal(v, loaded[k]) for k, v in m.state_dict().items())
    assert load_embedder(str(path), device="cpu", tta=False).tta is False  # the caller overrides meta
    bad = save_checkpoint(tmp_path / "bad.pt", kind="embedder", model="nn4_small", model_kwargs={},
                          state_dict={"nope": torch.zeros(1)})
    with pytest.raises(ModelError, match="do not fit"):
        load_embedder(str(bad))
    det = save_checkpoint(tmp_path / "det.pt", kind="detector", model="x", model_kwargs={}, state_dict={})
    with pytest.raises(ModelError, match="expected 'embedder'"):
        load_embedder(str(det))


def test_ensemble_concatenates_members_and_fuses_distances():
    members = [RawPixelEmbedder(size=6), RawPixelEmbedder(size=5, gray=False), NetworkEmbedder(_Tiny(), device="cpu")]
    ens = EnsembleEmbedder(members)
    x = _images(n=7, size=12)
    e = ens.embed(x, batch_size=3)
    parts = [m.embed(x) for m in members]
    assert e.shape == (7, 36 + 75 + 4) and ens.dim == 115 and ens.input_size == 8
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(e, np.concatenate(parts, axis=1) / np.sqrt(3), atol=1e-6)
    # the ensemble's squared distance is the mean of the members' squared distances, pair by pair
    for i in range(7):
        for j in range(7):
            want = np.mean([np.sum((p[i] - p[j]) ** 2) for p in parts])
            assert abs(np.sum((e[i] - e[j]) ** 2) - want) < 1e-5


def test_ensemble_fits_members_that_need_it_and_rejects_bad_members():
    ens = EnsembleEmbedder([PCAEmbedder(n_components=3, size=8), RawPixelEmbedder(size=4)])
    assert ens.needs_fit
    with pytest.raises(ModelError, match="not fitted"):
        ens.embed(_images(n=2))
    fitted = ens.fit(_images(n=10))
    assert not fitted.needs_fit and ens.needs_fit  # a fitted copy, the original untouched
    assert fitted.embed(_images(n=2, seed=1)).shape == (2, 3 + 16)
    with pytest.raises(ModelError, match="at least two"):
        EnsembleEmbedder([RawPixelEmbedder()])
    with pytest.raises(ModelError, match="must be embedders"):
        EnsembleEmbedder([RawPixelEmbedder(), "raw"])


def test_load_embedder_ensemble_spec(tmp_path):
    from iznet.models import create_model

    path = save_checkpoint(tmp_path / "e.pt", kind="embedder", model="nn4_small", model_kwargs={},
                           state_dict=create_model("nn4_small").state_dict(), meta={"tta": True})
    e = load_embedder(f"raw:8 + {path}", device="cpu", tta=False)
    assert isinstance(e, EnsembleEmbedder) and e.dim == 64 + 128 and e.trained
    assert isinstance(e.members[1], NetworkEmbedder) and e.members[1].tta is False  # tta reaches each member
    assert e.embed(_images(n=2, size=20)).shape == (2, 192)
    assert not load_embedder("raw+nn4_small", device="cpu").trained  # an untrained member flags the whole
    with pytest.raises(ModelError, match="empty member"):
        load_embedder("raw+")
    with pytest.raises(ModelError, match=r"member 'runs/missing.pt'.*does not exist"):
        load_embedder("raw+runs/missing.pt")
