"""Recognition: embedders, the gallery, prototypes, the matcher, face extraction and the full pipeline.

Names are re-exported lazily, so importing one light module (e.g. the gallery) does not pull in torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "embedder": ["Embedder", "NetworkEmbedder", "PCAEmbedder", "RawPixelEmbedder", "SPEC_HELP", "load_embedder"],
    "gallery": ["EMPTY_MESSAGE", "EnrollResult", "Gallery", "ImageRecord", "PersonInfo", "PersonSummary",
                "RESERVED_NAMES", "sha256_bytes", "sha256_file", "validate_name"],
    "prototypes": ["METHODS", "centroid", "compute_prototypes", "kmeans_prototypes", "medoid", "pairwise_distances",
                   "spherical_kmeans"],
    "matcher": ["UNKNOWN", "Match", "Matcher", "calibrate_threshold"],
    "pipeline": ["Calibration", "DemoAssets", "EnrollReport", "FaceCrop", "FaceDetector", "FaceResult",
                 "LabelResult", "Pipeline", "RebuildReport", "calibrate_on_lfw", "check_gallery_embedder",
                 "crops_to_batch", "default_detector_spec", "default_embedder_spec", "default_gallery_path",
                 "demo_assets", "detect_faces", "embedder_tag", "enroll_files", "enroll_folder",
                 "face_crop_from_file", "load_detector_spec", "load_embedder_spec", "person_folders",
                 "rebuild_embeddings", "whole_image_crop"],
    "extract": ["ExtractReport", "extract_faces"],
}
_WHERE = {name: mod for mod, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(f"module 'iznet.recognize' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"iznet.recognize.{mod}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
