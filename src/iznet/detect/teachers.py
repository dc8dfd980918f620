"""OpenCV face detectors used as teachers (pseudo labels) and as baselines in benchmarks.

Both follow the detector protocol of this package: ``detect(image (H, W, 3) uint8 RGB) -> Detections``.

- :class:`HaarDetector`: OpenCV's frontal-face Haar cascade (opencv-python-headless 4.x). Its square box
  is mapped to the project's tight-box convention with the constants measured for
  :mod:`iznet.data.crops` (side × 1.076, centre 0.033 sides lower); scores are the cascade's level weights
  squashed by a logistic (only their order matters).
- :class:`YuNetDetector`: YuNet through ``cv2.FaceDetectorYN``; the ONNX file is passed by path and never
  copied. Its boxes define the tight convention (brow to chin, cheek to cheek).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from iznet.detect.results import Detections
from iznet.errors import ModelError


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        got = getattr(image, "shape", type(image).__name__)
        raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got {got}")
    return np.ascontiguousarray(image)


class HaarDetector:
    """OpenCV's Haar cascade (``haarcascade_frontalface_default.xml``).

    Args:
        scale_factor, min_neighbors: ``detectMultiScale`` settings (1.1 and 5, OpenCV's usual).
        min_size: smallest face side in pixels.
        tight: map the cascade's square box to the tight convention (see module docstring).
    """

    name = "haar"

    def __init__(self, scale_factor: float = 1.1, min_neighbors: int = 5, min_size: int = 20, tight: bool = True):
        import cv2

        if not hasattr(cv2, "CascadeClassifier"):
            raise ModelError("this OpenCV has no CascadeClassifier (5.x); install opencv-python-headless<5")
        self._cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        if self._cascade.empty():
            raise ModelError("OpenCV's Haar face cascade could not be loaded")
        self.scale_factor, self.min_neighbors, self.min_size, self.tight = scale_factor, min_neighbors, min_size, tight
        self.score_threshold = 0.0  # the cascade has no confidence threshold of its own

    def detect(self, image: np.ndarray) -> Detections:
        """Faces in an (H, W, 3) uint8 RGB image."""
        import cv2

        from iznet.data.crops import HAAR_CENTRE_DY, HAAR_SIDE_RATIO

        image = _check_image(image)
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        rects, _, weights = self._cascade.detectMultiScale3(
            gray, self.scale_factor, self.min_neighbors, minSize=(self.min_size, self.min_size),
            outputRejectLevels=True)
        if len(rects) == 0:
            return Detections.empty((image.shape[1], image.shape[0]))
        rects = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
        x, y, w, h = rects.T
        if self.tight:
            side = HAAR_SIDE_RATIO * np.maximum(w, h)
            cx, cy = x + w / 2, y + h / 2 + HAAR_CENTRE_DY * h
            boxes = np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], 1)
        else:
            boxes = np.stack([x, y, x + w, y + h], 1)
        scores = np.array([1 / (1 + math.exp(-float(v))) for v in np.asarray(weights).reshape(-1)])
        order = np.argsort(-scores, kind="stable")
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, image.shape[1])
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, image.shape[0])
        return Detections(torch.from_numpy(boxes[order]).float(), torch.from_numpy(scores[order]).float(),
                          (image.shape[1], image.shape[0]))


class YuNetDetector:
    """YuNet via ``cv2.FaceDetectorYN``.

    Args:
        model_path: the YuNet ``.onnx`` file.
        score_threshold: lowest score returned (the detector's operating point when used alone).
        nms_threshold: YuNet's own NMS IoU.
        top_k: candidates before NMS.
    """

    def __init__(self, model_path: str | Path, score_threshold: float = 0.6, nms_threshold: float = 0.3,
                 top_k: int = 5000):
        import cv2

        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise ModelError(f"YuNet model {self.model_path} does not exist; pass yunet:PATH to the .onnx file")
        try:
            self._det = cv2.FaceDetectorYN.create(str(self.model_path), "", (320, 320), score_threshold,
                                                  nms_threshold, top_k)
        except cv2.error as e:
            raise ModelError(f"cannot load YuNet model {self.model_path}: {e}") from None
        self.score_threshold = score_threshold
        self.name = f"yunet:{self.model_path.name}"

    def _faces(self, image: np.ndarray) -> np.ndarray:
        import cv2

        h, w = image.shape[:2]
        self._det.setInputSize((w, h))
        _, faces = self._det.detect(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        return np.zeros((0, 15)) if faces is None else np.asarray(faces, dtype=np.float64).reshape(-1, 15)

    def detect_landmarks(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Faces with YuNet's five landmarks, highest score first.

        Returns:
            (boxes (N, 4) x0, y0, x1, y1; landmarks (N, 5, 2): the eye on the image's left, the other eye,
            nose tip, left and right mouth corner; scores (N,)), float64, in pixels of ``image``
            (not clipped: a landmark may lie outside a face that leaves the picture).
        """
        faces = self._faces(_check_image(image))
        order = np.argsort(-faces[:, 14], kind="stable")
        faces = faces[order]
        boxes = np.stack([faces[:, 0], faces[:, 1], faces[:, 0] + faces[:, 2], faces[:, 1] + faces[:, 3]], 1)
        return boxes.reshape(-1, 4), faces[:, 4:14].reshape(-1, 5, 2), faces[:, 14].copy()

    def detect(self, image: np.ndarray) -> Detections:
        """Faces in an (H, W, 3) uint8 RGB image."""
        image = _check_image(image)
        h, w = image.shape[:2]
        faces = self._faces(image)
        if len(faces) == 0:
            return Detections.empty((w, h))
        boxes = np.stack([faces[:, 0], faces[:, 1], faces[:, 0] + faces[:, 2], faces[:, 1] + faces[:, 3]], 1)
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
        scores = faces[:, -1]
        order = np.argsort(-scores, kind="stable")
        return Detections(torch.from_numpy(boxes[order]).float(), torch.from_numpy(scores[order]).float(), (w, h))
