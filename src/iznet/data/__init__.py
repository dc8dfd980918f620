"""Data: image loading, identity folders, LFW and its pair protocol, the face-crop convention, packs.

Names are re-exported lazily, so ``import iznet.data.paths`` (used by the CLI at start-up) does not
pull in torch or OpenCV.
"""

from __future__ import annotations

from iznet.utils.lazy import lazy_exports

_EXPORTS = {
    "images": ["IMAGE_EXTENSIONS", "SkipReport", "list_images", "load_image", "load_image_bytes", "load_images"],
    "datasets": ["IdentityFolder"],
    "lfw": ["LFW", "Pair", "find_lfw", "load_view1", "load_view2", "people_in_pairs", "read_pairs",
            "training_people", "view1_train_people", "view2_train_people"],
    "crops": ["FACE_CROP_SCALE", "LFW_FACE_BOX", "crop_box", "crop_face", "haar_face_box", "lfw_crop"],
    "pack": ["Pack", "PackStats", "load_pack", "pack_identity_folder", "pack_images", "pack_lfw"],
    "paths": ["data_root", "shared_data_root"],
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS, globals())
