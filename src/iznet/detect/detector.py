"""Using a trained detector: ``YoloFaceDetector.detect(image) -> Detections`` and ``load_detector(spec)``.

A detector spec (the ``--detector`` option everywhere) is ``haar``, ``yunet:PATH`` (YuNet ONNX file) or the
path of a detector checkpoint (``kind="detector"``, written by ``iznet train-detector``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from iznet.detect.model import YoloDetector, create_detector
from iznet.detect.postprocess import PostprocessConfig
from iznet.detect.relook import relook_found
from iznet.detect.results import Detections
from iznet.detect.settings import RelookConfig
from iznet.detect.tta import TTAConfig, detect_images, tta_config
from iznet.utils.checkpoint import load_checkpoint, save_checkpoint
from iznet.errors import ModelError
from iznet.utils.device import cpu_channels_last

KIND = "detector"


def save_detector(path: str | Path, model: YoloDetector, name: str, model_kwargs: dict[str, Any],
                  meta: dict[str, Any] | None = None, train_state: dict[str, Any] | None = None) -> Path:
    """Write a detector checkpoint (``kind="detector"``); ``model_kwargs`` rebuild it with :func:`create_detector`."""
    return save_checkpoint(path, kind=KIND, model=name, model_kwargs=model_kwargs,
                           state_dict=model.state_dict(), meta=meta, train_state=train_state)


def detector_from_checkpoint(ckpt: dict[str, Any], allow_missing: tuple[str, ...] = ()) -> YoloDetector:
    """Rebuild the network of a loaded checkpoint dict (weights included).

    ``allow_missing``: prefixes of weights the checkpoint may lack (they keep their initialisation), e.g. the
    landmark stages when a box-only detector is given ``landmarks=True``.
    """
    kwargs = dict(ckpt.get("model_kwargs") or {})
    if "anchors" in kwargs:
        kwargs["anchors"] = tuple(tuple(a) for a in kwargs["anchors"])
    model = create_detector(ckpt["model"], **kwargs)
    try:
        missing, unexpected = model.load_state_dict(ckpt["state_dict"], strict=not allow_missing)
    except RuntimeError as e:
        raise ModelError(f"checkpoint weights do not fit detector {ckpt['model']!r}: {e}") from None
    bad = [k for k in missing if not k.startswith(allow_missing)] + list(unexpected)
    if bad:
        raise ModelError(f"checkpoint weights do not fit detector {ckpt['model']!r}: {', '.join(bad[:5])}")
    return model


class YoloFaceDetector:
    """A trained :class:`YoloDetector` with its pre- and post-processing.

    Args:
        model: the network (its ``image_size`` is the input side).
        config: post-processing thresholds (defaults: confidence 0.3, NMS IoU 0.4, at most 12 faces).
        device: where to run (default: the model's device).
        name: how the detector is named in outputs.
        tta: test-time augmentation, a :class:`~iznet.detect.tta.TTAConfig` or a mode name (``off``, ``flip``,
            ``full``; default ``full``: input sides 1× and 1.3× the trained side, each also mirrored, fused by
            box voting; see :mod:`iznet.detect.tta`).
        relook: the second look at small faces for their landmarks (:mod:`iznet.detect.relook`; default
            None: the first look's landmarks; :func:`iznet.loading.load_detector` turns it on).

    Example:
        >>> det = YoloFaceDetector.from_checkpoint("runs/det/best.pt")  # doctest: +SKIP
        >>> det.detect(load_image("team.jpg")).to_json()                # doctest: +SKIP
        [{'xyxy': [101.2, 80.4, 140.9, 131.0], 'score': 0.93}]
    """

    def __init__(self, model: YoloDetector, config: PostprocessConfig = PostprocessConfig(),
                 device: torch.device | str | None = None, name: str = "iznet-yolo",
                 tta: TTAConfig | str | None = None, relook: RelookConfig | None = None):
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model = model.to(self.device).eval()
        self.config = config
        self.name = name
        self.tta = tta_config(tta)
        self.relook = relook

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: torch.device | str | None = None,
                        config: PostprocessConfig | None = None,
                        tta: TTAConfig | str | None = None,
                        relook: RelookConfig | None = None) -> "YoloFaceDetector":
        """Load a ``kind="detector"`` checkpoint (never unpickles; see :mod:`iznet.utils.checkpoint`)."""
        ckpt = load_checkpoint(path, kind=KIND)
        model = detector_from_checkpoint(ckpt)
        if config is None:
            pp = (ckpt.get("meta") or {}).get("postprocess") or {}
            config = PostprocessConfig(**{k: pp[k] for k in ("conf_threshold", "iou_threshold", "max_detections")
                                          if k in pp})
        return cls(model, config, device or "cpu", name=Path(path).name, tta=tta, relook=relook)

    @torch.no_grad()
    def detect_batch(self, images: Sequence[np.ndarray], batch_size: int = 16,
                     config: PostprocessConfig | None = None) -> list[Detections]:
        """Detect faces in several (H, W, 3) uint8 RGB images; boxes are in each image's pixels."""
        images = [_check_rgb(im) for im in images]

        def forward(x: torch.Tensor) -> torch.Tensor:
            return self.model(cpu_channels_last(x.to(self.device, non_blocking=True)))

        size, config = self.model.image_size, config or self.config
        found = detect_images(forward, images, size, config, self.tta, batch_size)
        if self.relook is not None:
            again, second = self.relook.second_look(config)
            found = relook_found(lambda sq: detect_images(forward, sq, size, again, second, batch_size),
                                 images, found, size, self.relook)
        refiner = getattr(self.model, "landmark_refiner", None)
        return refine_detections(refiner, images, found) if refiner is not None else found

    def detect(self, image: np.ndarray) -> Detections:
        """Faces in one (H, W, 3) uint8 RGB image (an empty :class:`Detections` when there is none)."""
        return self.detect_batch([image])[0]


def refine_detections(refiner: Any, images: Sequence[np.ndarray], found: list[Detections]) -> list[Detections]:
    """Each detection's landmarks refined by the second stage (:func:`iznet.detect.refine.refine_points`);
    ``refiner`` is the network or any callable with its contract (an ONNX session's wrapper)."""
    from iznet.detect.refine import refine_points

    if isinstance(refiner, torch.nn.Module):
        refiner = refiner.cpu().eval()
    out = []
    for im, d in zip(images, found):
        if d.landmarks is not None and len(d):
            pts = refine_points(refiner, im, d.landmarks.numpy())
            d = Detections(d.xyxy, d.scores, d.image_size, torch.from_numpy(pts).float())
        out.append(d)
    return out


def _check_rgb(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        got = getattr(image, "shape", type(image).__name__)
        raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got {got}")
    return image


def load_detector(spec: str | Path, device: torch.device | str | None = None,
                  tta: TTAConfig | str | None = None, relook: RelookConfig | None = None) -> Any:
    """A face detector from a spec: ``haar``, ``yunet:PATH`` or a detector checkpoint path.

    ``tta`` (test-time augmentation of iznet detectors, default ``full``) and ``relook`` (the second look at
    small faces for their landmarks, :mod:`iznet.detect.relook`; None: none) do not apply to Haar or YuNet.

    Returns:
        an object with ``detect(image (H, W, 3) uint8 RGB) -> Detections`` and ``name``.

    Raises:
        ModelError: unknown spec, missing file, not a detector checkpoint.
    """
    text = str(spec)
    if text == "haar":
        from iznet.detect.teachers import HaarDetector

        return HaarDetector()
    if text.startswith("yunet:"):
        from iznet.detect.teachers import YuNetDetector

        return YuNetDetector(text[len("yunet:"):])
    if text == "yunet":
        raise ModelError("give the YuNet model file as yunet:PATH (e.g. yunet:models/face_detection_yunet.onnx)")
    path = Path(text)
    if not path.exists():
        raise ModelError(f"detector {text!r} is neither 'haar', 'yunet:PATH' nor an existing checkpoint file")
    return YoloFaceDetector.from_checkpoint(path, device=device, tta=tta, relook=relook)
