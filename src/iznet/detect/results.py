"""``Detections``: the boxes and scores found in one image, in that image's pixel coordinates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass
class Detections:
    """Faces found in one image.

    Attributes:
        xyxy: (N, 4) float32 boxes ``x1, y1, x2, y2`` in pixels of the original image
            (x to the right, y down; ``x2``/``y2`` are the right/bottom edges).
        scores: (N,) float32 confidences in [0, 1], sorted high to low by the producers in this package.
        image_size: ``(width, height)`` of the image the boxes refer to, when known.
        landmarks: (N, 5, 2) float32 points per face (eyes, nose tip, mouth corners; order in
            :data:`iznet.detect.landmarks.LANDMARK_NAMES`) in the same pixels, or None when the detector
            gives none.

    Example:
        >>> d = Detections(torch.tensor([[10., 20., 50., 70.]]), torch.tensor([0.9]))
        >>> len(d), d.to_json()[0]["score"]
        (1, 0.9)
    """

    xyxy: torch.Tensor
    scores: torch.Tensor
    image_size: tuple[int, int] | None = None
    landmarks: torch.Tensor | None = None

    def __post_init__(self) -> None:
        self.xyxy = torch.as_tensor(self.xyxy, dtype=torch.float32).reshape(-1, 4)
        self.scores = torch.as_tensor(self.scores, dtype=torch.float32).reshape(-1)
        if self.xyxy.shape[0] != self.scores.shape[0]:
            raise ValueError(f"{self.xyxy.shape[0]} boxes but {self.scores.shape[0]} scores")
        if self.landmarks is not None:
            self.landmarks = torch.as_tensor(self.landmarks, dtype=torch.float32).reshape(-1, 5, 2)
            if self.landmarks.shape[0] != self.xyxy.shape[0]:
                raise ValueError(f"{self.xyxy.shape[0]} boxes but {self.landmarks.shape[0]} landmark sets")

    @classmethod
    def empty(cls, image_size: tuple[int, int] | None = None) -> "Detections":
        """No face: zero boxes (the normal answer for a photo without faces)."""
        return cls(torch.zeros(0, 4), torch.zeros(0), image_size)

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @property
    def conf(self) -> torch.Tensor:
        """Alias of ``scores``."""
        return self.scores

    @property
    def xywh(self) -> torch.Tensor:
        """(N, 4) boxes as ``x, y, w, h`` (top-left corner, width, height) in pixels."""
        out = self.xyxy.clone()
        out[:, 2:] = self.xyxy[:, 2:] - self.xyxy[:, :2]
        return out

    def cpu(self) -> "Detections":
        lm = None if self.landmarks is None else self.landmarks.detach().cpu()
        return Detections(self.xyxy.detach().cpu(), self.scores.detach().cpu(), self.image_size, lm)

    def subset(self, index) -> "Detections":
        """The faces at ``index`` (indices, a slice or a bool mask), landmarks included."""
        lm = None if self.landmarks is None else self.landmarks[index]
        return Detections(self.xyxy[index], self.scores[index], self.image_size, lm)

    def numpy(self) -> tuple[np.ndarray, np.ndarray]:
        """``(xyxy (N, 4) float32, scores (N,) float32)`` as numpy arrays."""
        c = self.cpu()
        return c.xyxy.numpy(), c.scores.numpy()

    def to_json(self) -> list[dict[str, Any]]:
        """JSON-ready list, one dict per face: ``{"xyxy": [x1, y1, x2, y2], "score": s}`` (pixels, 2 decimals),
        plus ``"landmarks": [[x, y] × 5]`` when the detector gives them."""
        boxes, scores = self.numpy()
        out = [{"xyxy": [round(float(v), 2) for v in b], "score": round(float(s), 4)}
               for b, s in zip(boxes, scores)]
        if self.landmarks is not None:
            for d, pts in zip(out, self.landmarks.detach().cpu().numpy()):
                d["landmarks"] = [[round(float(x), 2), round(float(y), 2)] for x, y in pts]
        return out
