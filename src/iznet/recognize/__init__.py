"""Recognition: embedders, the gallery, prototypes, the matcher, face extraction and the full pipeline.

Names are re-exported lazily, so importing one light module (e.g. the gallery) does not pull in torch.
"""

from __future__ import annotations

from iznet.utils.lazy import lazy_exports

_EXPORTS = {
    "embedder": ["Embedder", "EnsembleEmbedder", "NetworkEmbedder", "PCAEmbedder", "RawPixelEmbedder", "SPEC_HELP",
                 "load_embedder"],
    "gallery": ["EMPTY_MESSAGE", "EnrollResult", "Gallery", "ImageRecord", "PersonInfo", "PersonSummary",
                "RESERVED_NAMES", "sha256_bytes", "sha256_file", "validate_name"],
    "prototypes": ["METHODS", "centroid", "compute_prototypes", "kmeans_prototypes", "medoid", "pairwise_distances",
                   "spherical_kmeans"],
    "matcher": ["UNKNOWN", "Match", "Matcher", "SpreadRule", "calibrate_threshold", "person_spreads"],
    "pipeline": ["DemoAssets", "EnrollReport", "FaceCrop", "FaceDetector", "FaceResult",
                 "LabelResult", "Pipeline", "RebuildReport", "check_gallery_embedder",
                 "crops_to_batch", "default_detector_spec", "default_embedder_spec", "default_gallery_path",
                 "demo_assets", "detect_faces", "embedder_tag", "enroll_files", "enroll_folder",
                 "face_crop_from_file", "person_folders",
                 "rebuild_embeddings", "whole_image_crop"],
    "extract": ["ExtractReport", "extract_faces"],
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS, globals())
