"""Pack every LFW image as an aligned 112-pixel face (five YuNet landmarks onto the insightface template), for
scoring embedders trained on aligned faces with ``iznet eval lfw --pack``.

The teacher runs on a padded canvas and keeps the confident face nearest the centre (as the training
collection's build does, ``iznet.data.collection.detect_one``); images where it finds none get the usual LFW
box crop (counted).

    OMP_NUM_THREADS=1 python scripts/pack_lfw_aligned.py --lfw ../shared/data/lfw \
        --yunet ../shared/models/face_detection_yunet_2026may.onnx --out packs/lfw_aligned112.pt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


class AlignedCrop:
    """A crop function for :func:`iznet.data.pack.pack_images`: the teacher's landmarks, aligned."""

    def __init__(self, yunet: str):
        self.yunet, self._teacher, self.fallback = yunet, None, 0

    def __call__(self, img: np.ndarray, size: int) -> np.ndarray:
        from iznet.data.align import align_face
        from iznet.data.collection import BuildConfig, detect_one
        from iznet.data.crops import lfw_crop
        from iznet.detect.teachers import YuNetDetector

        if self._teacher is None:
            self._teacher = YuNetDetector(self.yunet, score_threshold=0.3)
        got = detect_one(img, self._teacher, BuildConfig(min_score=0.3, min_eye_px=0))
        if isinstance(got, str):
            self.fallback += 1
            return lfw_crop(img, size)
        return align_face(img, got[1], size)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", required=True)
    ap.add_argument("--yunet", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--size", type=int, default=112)
    a = ap.parse_args(argv)
    from iznet.data.lfw import LFW
    from iznet.data.pack import pack_identity_folder

    crop = AlignedCrop(a.yunet)
    stats = pack_identity_folder(LFW(a.lfw).identity_folder(), a.out, a.size, crop=crop, workers=1,
                                 meta={"dataset": "lfw", "crop": "aligned", "teacher": Path(a.yunet).name})
    print(stats.summary())
    print(f"teacher found no face (LFW box crop used): {crop.fallback}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
