"""YOLO-style face detection: targets, loss, model, post-processing, data, training, teachers.

Public API (see docs/detection.md)::

    from iznet.detect import load_detector
    det = load_detector("runs/det/best.pt")        # or "haar", "yunet:PATH"
    faces = det.detect(image)                      # image: (H, W, 3) uint8 RGB -> Detections
    faces.xyxy, faces.scores, faces.to_json()

Names are re-exported lazily, so the torch-free modules (:mod:`iznet.detect.settings`,
:mod:`iznet.detect.numpy_post`, :mod:`iznet.detect.letterbox`) load without PyTorch. Heavy or optional pieces
(training, packs, OpenCV teachers) are imported lazily by their modules.
"""

from __future__ import annotations

from iznet.utils.lazy import lazy_exports

_EXPORTS = {
    "detector": ["YoloFaceDetector", "load_detector", "save_detector"],
    "evaluate": ["DetectionMetrics", "average_precision", "evaluate_detections", "recall_at"],
    "letterbox": ["Letterbox"],
    "loss": ["YoloLoss", "activate"],
    "model": ["YoloDetector", "create_detector", "list_detectors", "register_detector"],
    "settings": ["PostprocessConfig"],
    "results": ["Detections"],
    "targets": ["DEFAULT_ANCHORS", "decode", "encode_targets"],
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS, globals())
