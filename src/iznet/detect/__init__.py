"""YOLO-style face detection: targets, loss, model, post-processing, data, training, teachers.

Public API (see docs/detection.md)::

    from iznet.detect import load_detector
    det = load_detector("runs/det/best.pt")        # or "haar", "yunet:PATH"
    faces = det.detect(image)                      # image: (H, W, 3) uint8 RGB -> Detections
    faces.xyxy, faces.scores, faces.to_json()

Heavy or optional pieces (training, packs, OpenCV teachers) are imported lazily by their modules.
"""

from iznet.detect.detector import YoloFaceDetector, load_detector, save_detector
from iznet.detect.evaluate import DetectionMetrics, average_precision, evaluate_detections, recall_at
from iznet.detect.letterbox import Letterbox, letterbox
from iznet.detect.loss import YoloLoss, activate
from iznet.detect.model import YoloDetector, create_detector, list_detectors, register_detector
from iznet.detect.postprocess import PostprocessConfig, postprocess
from iznet.detect.results import Detections
from iznet.detect.targets import DEFAULT_ANCHORS, decode, encode_targets

__all__ = [
    "DEFAULT_ANCHORS", "DetectionMetrics", "Detections", "Letterbox", "PostprocessConfig", "YoloDetector",
    "YoloFaceDetector", "YoloLoss", "activate", "average_precision", "create_detector", "decode",
    "encode_targets", "evaluate_detections", "letterbox", "list_detectors", "load_detector", "postprocess",
    "recall_at", "register_detector", "save_detector",
]
