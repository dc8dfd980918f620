"""The unknown-face threshold of an embedder chosen on LFW-format verification pairs (people who are not in
the gallery): ``iznet gallery calibrate``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from iznet.data.images import load_image
from iznet.recognize.embedder import Embedder
from iznet.recognize.matcher import calibrate_threshold
from iznet.recognize.faces import crops_to_batch

# ---------------------------------------------------------------------------------------------- calibration
@dataclass(frozen=True)
class Calibration:
    """An unknown-face threshold chosen on verification pairs.

    Attributes:
        threshold: distances ``<=`` it are accepted as the same person.
        target_far: the false-accept rate aimed at.
        far: the impostor share accepted at ``threshold`` on these pairs.
        tar: the genuine share accepted at ``threshold`` on these pairs.
        n_genuine, n_impostor: pair counts.
        source: where the pairs came from.
    """

    threshold: float
    target_far: float
    far: float
    tar: float
    n_genuine: int
    n_impostor: int
    source: str


def lfw_pairs_for(pairs: str, lfw_root: str | Path | None = None) -> tuple[Any, list[Any], str]:
    """The LFW tree and the pairs for calibration.

    Args:
        pairs: ``view1`` (pairsDevTrain + pairsDevTest), ``view2`` (pairs.txt) or an LFW-format pair file.
        lfw_root: the LFW folder or the data root holding ``lfw/`` (default: the data root).

    Returns:
        ``(lfw, pairs, description)``.
    """
    from iznet.data.lfw import LFW, find_lfw, load_view1, load_view2, read_pairs

    lfw = LFW(find_lfw(lfw_root))
    if pairs == "view1":
        a, b = load_view1(lfw.root)
        plist, desc = list(a) + list(b), f"LFW View 1 pairs in {lfw.root}"
    elif pairs == "view2":
        plist, desc = [p for fold in load_view2(lfw.root) for p in fold], f"LFW View 2 pairs in {lfw.root}"
    else:
        plist, desc = [p for fold in read_pairs(pairs) for p in fold], f"pairs {pairs} over {lfw.root}"
    lfw.check_pairs(plist)
    return lfw, plist, desc


def calibrate_on_lfw(embedder: Embedder, pairs: str = "view1", lfw_root: str | Path | None = None,
                     target_far: float = 1e-3, batch_size: int = 128) -> Calibration:
    """Choose the unknown-face threshold for ``embedder`` on LFW-format pairs (people not in the gallery).

    Every image is cut with :func:`iznet.data.crops.lfw_crop` at the embedder's input size (the same framing
    as a detected face), embedded once, and :func:`~iznet.recognize.matcher.calibrate_threshold` picks the
    largest threshold whose false-accept rate on the impostor pairs is at most ``target_far``.
    """
    from concurrent.futures import ThreadPoolExecutor

    from iznet.data.crops import lfw_crop

    lfw, plist, desc = lfw_pairs_for(pairs, lfw_root)
    keys = list(dict.fromkeys([(p.name1, p.idx1) for p in plist] + [(p.name2, p.idx2) for p in plist]))
    size = int(embedder.input_size)

    def one(key: tuple[str, int]) -> np.ndarray:
        return lfw_crop(load_image(lfw.image_path(*key)), size)

    with ThreadPoolExecutor(max_workers=4) as ex:  # decoding and resizing release the GIL
        crops = list(ex.map(one, keys, chunksize=32))
    emb = embedder.embed(crops_to_batch(crops), batch_size=batch_size)
    row = {k: i for i, k in enumerate(keys)}
    ia = np.array([row[(p.name1, p.idx1)] for p in plist])
    ib = np.array([row[(p.name2, p.idx2)] for p in plist])
    dist = np.linalg.norm(emb[ia] - emb[ib], axis=1).astype(np.float64)
    same = np.array([p.same for p in plist], dtype=bool)
    t = calibrate_threshold(dist, same, target_far)
    return Calibration(
        threshold=t,
        target_far=float(target_far),
        far=float(np.mean(dist[~same] <= t)),
        tar=float(np.mean(dist[same] <= t)) if same.any() else float("nan"),
        n_genuine=int(same.sum()),
        n_impostor=int((~same).sum()),
        source=desc,
    )
