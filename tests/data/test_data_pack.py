"""Packs: round trip on a tiny folder, skips, errors, safe loading, decoding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from data_fixtures import make_identity_folder, make_lfw_tiny, smooth_image
from iznet.data.crops import lfw_crop
from iznet.data.datasets import IdentityFolder
from iznet.data.images import load_image
from iznet.data.pack import (PACK_FORMAT, fit_square, load_pack, pack_identity_folder, pack_images, pack_lfw)
from iznet.errors import DataError


@pytest.fixture()
def folder(tmp_path):
    return make_identity_folder(tmp_path / "people", {"ann": 3, "ben": 2, "cy": 1}, (40, 48))


def test_round_trip(folder, tmp_path):
    out = tmp_path / "packs" / "p.pt"
    seen = []
    stats = pack_identity_folder(folder, out, 32, quality=95, progress=seen.append)
    assert stats.count == 6 and stats.skipped.count == 0 and sum(seen) == 6
    assert stats.nbytes == out.stat().st_size and stats.psnr_db > 30
    p = load_pack(out)
    ds = IdentityFolder(folder)
    assert len(p) == 6 and p.size == 32 and p.quality == 95
    assert p.classes == ["ann", "ben", "cy"]
    assert p.labels.dtype == torch.int64 and p.labels.tolist() == [0, 0, 0, 1, 1, 2]
    assert p.paths == ds.relpaths() and p.paths[3] == "ben/ben_0001.jpg"
    assert p.index_of("ben/ben_0001.jpg") == 3 and p.index["cy/cy_0001.jpg"] == 5
    with pytest.raises(DataError, match="not in pack"):
        p.index_of("dan/dan_0001.jpg")
    imgs = p.decode()
    assert imgs.shape == (6, 3, 32, 32) and imgs.dtype == torch.uint8
    for i, path in enumerate(ds.paths):
        ref = torch.from_numpy(fit_square(load_image(path), 32)).permute(2, 0, 1).float()
        assert (imgs[i].float() - ref).abs().mean() < 3.0
    sel = p.decode([5, 0, -1])
    assert torch.equal(sel[0], imgs[5]) and torch.equal(sel[1], imgs[0]) and torch.equal(sel[2], imgs[5])
    assert torch.equal(p.decode(np.array([2]), batch_size=1), imgs[2:3])
    assert p.decode([]).shape == (0, 3, 32, 32)
    with pytest.raises(IndexError):
        p.decode([6])
    assert p.indices_for_classes(["cy", "ann"]).tolist() == [0, 1, 2, 5]
    assert p.meta["source"] == str(folder) and p.meta["skipped"] == 0


def test_file_is_safe_to_load_and_tagged(folder, tmp_path):
    out = tmp_path / "p.pt"
    pack_identity_folder(folder, out, 16)
    obj = torch.load(out, weights_only=True)
    assert obj["format"] == PACK_FORMAT
    assert obj["offsets"].dtype == torch.int64 and obj["offsets"][-1] == obj["data"].numel()
    assert obj["data"].dtype == torch.uint8
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file of the atomic write is gone


def test_unreadable_images_are_skipped_and_reported(folder, tmp_path):
    (folder / "ben" / "ben_0003.jpg").write_text("not a jpeg")
    (folder / "ben" / "ben_0004.jpg").write_bytes(b"")
    stats = pack_identity_folder(folder, tmp_path / "p.pt", 16)
    assert stats.count == 6 and stats.skipped.count == 2
    assert {p.name for p, _ in stats.skipped.skipped} == {"ben_0003.jpg", "ben_0004.jpg"}
    assert "skipped 2" in stats.summary()
    p = load_pack(tmp_path / "p.pt")
    assert "ben/ben_0003.jpg" not in p.index and p.meta["skipped"] == 2


def test_arrays_crop_function_and_no_face(tmp_path):
    imgs = [smooth_image(30, 30, i) for i in range(4)]
    items = [(f"x/{i}.jpg", i % 2, im) for i, im in enumerate(imgs)]

    def centre_or_none(img, size):
        return None if img is imgs[2] else fit_square(img[5:25, 5:25], size)

    stats = pack_images(items, tmp_path / "a.pt", 20, classes=["even", "odd"], crop=centre_or_none, quality=95)
    assert stats.count == 3 and stats.skipped.skipped == [(stats.skipped.skipped[0][0], "no face found")]
    p = load_pack(tmp_path / "a.pt")
    assert p.paths == ["x/0.jpg", "x/1.jpg", "x/3.jpg"] and p.labels.tolist() == [0, 1, 1]
    assert (p.decode([2])[0].permute(1, 2, 0).float() - torch.from_numpy(imgs[3][5:25, 5:25]).float()).abs().mean() < 3
    assert p.meta["crop"] == "centre_or_none"


def test_pack_errors(tmp_path):
    img = smooth_image(16, 16, 0)
    out = tmp_path / "e.pt"
    out.write_bytes(b"keep me")
    with pytest.raises(DataError, match="outside 0..0"):
        pack_images([("a.jpg", 1, img)], out, 16, classes=["only"])
    with pytest.raises(DataError, match="appears twice"):
        pack_images([("a.jpg", 0, img), ("a.jpg", 0, img)], out, 16, classes=["only"])
    with pytest.raises(DataError, match="quality"):
        pack_images([("a.jpg", 0, img)], out, 16, classes=["only"], quality=0)
    with pytest.raises(DataError, match="expected uint8"):
        pack_images([("a.jpg", 0, img)], out, 16, classes=["only"], crop=lambda im, s: im[:4])
    with pytest.raises(DataError, match="unknown crop"):
        pack_images([("a.jpg", 0, img)], out, 16, classes=["only"], crop="wobbly")
    with pytest.raises(DataError, match="nothing to pack"):
        pack_images([("a.jpg", 0, tmp_path / "missing.jpg")], out, 16, classes=["only"])
    assert out.read_bytes() == b"keep me"  # a failed run leaves the old file alone


def test_load_pack_errors(tmp_path, folder):
    with pytest.raises(DataError, match="does not exist"):
        load_pack(tmp_path / "none.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(DataError, match="not a readable pack"):
        load_pack(junk)
    other = tmp_path / "other.pt"
    torch.save({"format": "something-else"}, other)
    with pytest.raises(DataError, match="not an iznet pack"):
        load_pack(other)
    good = tmp_path / "good.pt"
    pack_identity_folder(folder, good, 16)
    obj = torch.load(good, weights_only=True)
    obj["offsets"] = obj["offsets"][:-1]
    bad = tmp_path / "bad.pt"
    torch.save(obj, bad)
    with pytest.raises(DataError, match="damaged pack"):
        load_pack(bad)


def test_pack_lfw_tiny(tmp_path):
    root = make_lfw_tiny(tmp_path / "lfw", frame=50)
    stats = pack_lfw(root, tmp_path / "lfw.pt", 24, quality=95)
    assert stats.count == 14 and stats.num_classes == 9
    p = load_pack(tmp_path / "lfw.pt")
    i = p.index_of("Alice_Ames/Alice_Ames_0003.jpg")
    assert p.classes[int(p.labels[i])] == "Alice_Ames"
    ref = lfw_crop(load_image(root / "images" / "Alice_Ames" / "Alice_Ames_0003.jpg"), 24)
    got = p.decode([i])[0].permute(1, 2, 0).numpy()
    assert np.abs(got.astype(float) - ref.astype(float)).mean() < 3
    assert p.meta["crop"] == "lfw" and p.meta["dataset"] == "lfw"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="decoding on the GPU needs CUDA")
def test_decode_on_cuda(folder, tmp_path):
    pack_identity_folder(folder, tmp_path / "p.pt", 32)
    p = load_pack(tmp_path / "p.pt")
    gpu = p.decode(device="cuda")
    assert gpu.device.type == "cuda" and gpu.shape == (6, 3, 32, 32)
    assert (gpu.cpu().float() - p.decode().float()).abs().mean() < 2
