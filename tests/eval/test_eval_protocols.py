"""End to end on a synthetic mini LFW and identity folder (no ../shared needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from iznet.data.pack import load_pack, pack_identity_folder, pack_lfw
from iznet.errors import DataError
from iznet.eval.protocols import evaluate_identification, evaluate_lfw
from iznet.recognize.embedder import Embedder, PCAEmbedder, RawPixelEmbedder

N_PEOPLE, N_IMAGES = 20, 3  # the mini LFW of tests/eval/conftest.py


class _SpyEmbedder(Embedder):
    """Reads each crop's identity from its centre pixel; records whom it was fitted on."""

    needs_fit = True
    input_size = 32
    name = "spy"

    def __init__(self, log):
        self.log = log
        self.fitted = False

    @property
    def dim(self):
        return N_PEOPLE

    def _ids(self, images):
        red = images[:, 0, self.input_size // 2, self.input_size // 2].long()
        return torch.round((red - 20) / 10).long().clamp(0, N_PEOPLE - 1)

    def _fit(self, images, labels):
        self.log.append((set(self._ids(images).tolist()), len(images), len(set(labels.tolist()))))
        self.fitted = True

    def _embed_batch(self, images):
        assert self.fitted
        return torch.nn.functional.one_hot(self._ids(images), N_PEOPLE).float()


def test_view2_fits_on_people_outside_each_fold(mini_lfw):
    log = []
    r = evaluate_lfw(_SpyEmbedder(log), None, "view2", mini_lfw)
    assert len(log) == 10
    for f, (ids, n_img, n_people) in enumerate(log):
        assert ids == set(range(N_PEOPLE)) - {2 * f, 2 * f + 1}
        assert n_img == (N_PEOPLE - 2) * N_IMAGES and n_people == N_PEOPLE - 2
    assert r["protocol"] == "lfw-view2" and r["n_pairs"] == 6000
    assert r["accuracy"] == 1.0 and r["auc"] == 1.0 and r["eer"] == 0.0 and len(r["fold_accuracy"]) == 10
    assert r["extra"]["fit"]["people_per_fold"] == [18] * 10


def test_view2_baselines_from_folder_and_pack(mini_lfw, tmp_path):
    raw = evaluate_lfw(RawPixelEmbedder(size=16), None, "view2", mini_lfw)
    assert raw["accuracy"] == 1.0 and raw["extra"]["fit"] is None
    assert "folder" in raw["extra"]["images"]
    pack_path = tmp_path / "lfw.pt"
    pack_lfw(mini_lfw, pack_path, 32)
    pca = evaluate_lfw(PCAEmbedder(n_components=8, size=16), load_pack(pack_path), "view2", mini_lfw)
    assert pca["accuracy"] == 1.0 and pca["extra"]["embedder"]["dim"] == 8
    raw_pack = evaluate_lfw(RawPixelEmbedder(size=16), str(pack_path), "view2", mini_lfw)
    assert raw_pack["accuracy"] == 1.0 and "pack" in raw_pack["extra"]["images"]


def test_view1_threshold_from_dev_train(mini_lfw):
    log = []
    r = evaluate_lfw(_SpyEmbedder(log), None, "view1", mini_lfw)
    assert log[0][0] == set(range(N_PEOPLE)) - {14, 15, 16, 17, 18, 19}
    assert r["protocol"] == "lfw-view1" and r["n_pairs"] == 6
    assert r["accuracy"] == 1.0 and r["extra"]["threshold_from"] == "pairsDevTrain"
    # one-hot distances: 0 for genuine, sqrt(2) for impostors -> threshold halfway
    assert r["thresholds"][0] == pytest.approx(np.sqrt(2) / 2)


def test_bad_protocol_and_missing_pack(mini_lfw, tmp_path):
    with pytest.raises(DataError, match="protocol"):
        evaluate_lfw(RawPixelEmbedder(), None, "view3", mini_lfw)
    with pytest.raises(DataError, match="does not exist"):
        evaluate_lfw(RawPixelEmbedder(), tmp_path / "none.pt", "view2", mini_lfw)


def test_identification_folder_and_pack(mini_ident, tmp_path):
    r = evaluate_identification(RawPixelEmbedder(size=16), mini_ident, k=3)
    assert r["rank1"] == {"nn": 1.0, "centroid": 1.0, "medoid": 1.0}
    assert r["n_people"] == 6 and r["n_enrolled"] == 18 and r["n_probes"] == 30
    p = evaluate_identification(PCAEmbedder(n_components=32, size=16), mini_ident, k=3, open_set_far=0.01)
    assert p["fit"] == "enrolment images only (18)" and p["embedder"]["dim"] == 17
    assert p["rank1"]["nn"] == 1.0
    assert set(p["open_set"]["known"]) | set(p["open_set"]["unknown"]) == {f"id{i}" for i in range(6)}
    pack = tmp_path / "ident.pt"
    pack_identity_folder(mini_ident, pack, 48)
    q = evaluate_identification(RawPixelEmbedder(size=16), str(pack), k=3)
    assert q["rank1"] == r["rank1"] and q["n_probes"] == 30


def test_identification_pca_enrolment_only(mini_ident):
    log = []

    class Spy(_SpyEmbedder):
        def _ids(self, images):  # identity folders here are 48 px; read the red centre value
            red = images[:, 0, images.shape[2] // 2, images.shape[3] // 2].long()
            return torch.round((red - 20) / 10).long().clamp(0, N_PEOPLE - 1)

    r = evaluate_identification(Spy(log), mini_ident, k=2)
    assert log[0][1] == 12 and log[0][2] == 6  # 2 images of each of 6 people
    assert r["rank1"]["nn"] == 1.0


def test_identification_fit_on_other_people(mini_ident, mini_lfw):
    log = []
    r = evaluate_identification(_SpyEmbedder(log), mini_ident, k=2, fit_people=mini_lfw / "images")
    assert log[0][1] == N_PEOPLE * N_IMAGES and "0 people shared" in r["fit"]
    with pytest.raises(DataError, match="also in the evaluation set"):
        evaluate_identification(_SpyEmbedder([]), mini_ident, k=2, fit_people=mini_ident)
