"""Embedders: anything that turns face crops into L2-normalised vectors.

The evaluation protocols, the trainer and the recognition pipeline all speak to this one interface:

* :class:`Embedder` (base): ``embed(images uint8 (N, 3, H, W)) -> (N, D) float32`` unit rows, and
  ``fit(images, labels)`` returning a fitted copy for the baselines that learn from data
  (``needs_fit = True``); networks are fitted by the trainer, not here.
* :class:`NetworkEmbedder`: an iznet network (``iznet.models``), optional flip test-time augmentation.
* :class:`RawPixelEmbedder`: the pixels themselves (a floor every learned method must beat).
* :class:`PCAEmbedder`: eigenfaces (Turk and Pentland 1991), fitted on training people only.
* :class:`EnsembleEmbedder`: several embedders at once, their unit vectors concatenated (each scaled by
  ``1/sqrt(n)``), so a squared distance is the mean of the members' squared distances.

:func:`load_embedder` builds one from a string: ``"raw"``, ``"pca:64"``, a model name (untrained!),
a checkpoint file, or several of these joined by ``+`` (an ensemble).

>>> import torch
>>> e = RawPixelEmbedder(size=8)
>>> e.embed(torch.zeros(2, 3, 16, 16, dtype=torch.uint8)).shape
(2, 64)
"""

from __future__ import annotations

import math

import copy
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from iznet.errors import ModelError

_logger = logging.getLogger(__name__)


def _as_uint8_batch(images: Any) -> torch.Tensor:
    """Accept a uint8 (N, 3, H, W) tensor or array; raise ModelError otherwise."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if not isinstance(images, torch.Tensor):
        raise ModelError(f"embedders take a uint8 (N, 3, H, W) tensor, got {type(images).__name__}")
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise ModelError(f"embedders take a uint8 (N, 3, H, W) tensor, got {images.dtype} of shape "
                         f"{tuple(images.shape)}; convert (H, W, 3) images with torch.from_numpy(a).permute(2, 0, 1)")
    return images


def _l2_normalize(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x.float(), p=2.0, dim=1, eps=1e-12)


class Embedder:
    """Base class. Subclasses implement :meth:`_embed_batch` (and :meth:`_fit` when ``needs_fit``).

    Attributes:
        name: short description, stored with every result.
        needs_fit: True for baselines fitted on training images (call :meth:`fit` first).
        trained: False for a network with random weights (its numbers mean nothing).
        input_size: side of the square crops it works best on; other sizes are resized.
        calibrated_threshold: the unknown-face threshold shipped with a checkpoint (``meta["calibration"]``),
            used by galleries that store none of their own; None when there is none.
        face_crop: the face crop convention it was trained on (:data:`iznet.data.align.CROP_CONVENTIONS`): ``box``
            (the 1.3× box crop) or ``aligned`` (five landmarks onto the 112×112 template).
        source: the checkpoint file it was loaded from (None for baselines and ensembles); a gallery records
            it, so ``iznet label`` can find the embedder a gallery was enrolled with.
    """

    name: str = "embedder"
    face_crop: str = "box"
    source: str | None = None
    needs_fit: bool = False
    trained: bool = True
    calibrated_threshold: float | None = None
    input_size: int = 112

    def fit(self, images: torch.Tensor, labels: np.ndarray | None = None) -> "Embedder":
        """A fitted copy (``self`` when nothing is learned).

        Args:
            images: uint8 (N, 3, S, S) training crops.
            labels: (N,) person labels (unused by unsupervised baselines).
        """
        if not self.needs_fit:
            return self
        images = _as_uint8_batch(images)
        if images.shape[0] < 2:
            raise ModelError(f"{self.name}: need at least 2 training images to fit, got {images.shape[0]}")
        fitted = copy.copy(self)
        fitted._fit(images, labels)
        return fitted

    def _fit(self, images: torch.Tensor, labels: np.ndarray | None) -> None:
        raise NotImplementedError

    def _embed_batch(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 3, H, W) -> float (B, D), not necessarily normalised."""
        raise NotImplementedError

    def embed(self, images: torch.Tensor, batch_size: int = 256) -> np.ndarray:
        """Embed face crops.

        Args:
            images: uint8 (N, 3, H, W) tensor (any device; square crops, resized to ``input_size``).
            batch_size: images per forward pass.

        Returns:
            (N, D) float32 array with L2-normalised rows.
        """
        images = _as_uint8_batch(images)
        if batch_size < 1:
            raise ModelError(f"batch_size must be >= 1, got {batch_size}")
        out = [_l2_normalize(self._embed_batch(images[i:i + batch_size])).cpu()
               for i in range(0, images.shape[0], batch_size)]
        if not out:
            return np.zeros((0, self.dim), dtype=np.float32)
        return torch.cat(out).numpy().astype(np.float32, copy=False)

    @property
    def dim(self) -> int:
        """Embedding size D."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """JSON-ready description stored beside results."""
        return {"name": self.name, "needs_fit": self.needs_fit, "trained": self.trained,
                "input_size": self.input_size, "dim": self.dim}


def _pixel_features(images: torch.Tensor, size: int, gray: bool, crop: float = 1.0) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float32 (B, F): optional centre crop, area resize to size, optional gray."""
    x = images.float() / 255.0
    if crop < 1.0:
        h, w = x.shape[-2:]
        ch, cw = max(1, round(h * crop)), max(1, round(w * crop))
        top, left = (h - ch) // 2, (w - cw) // 2
        x = x[..., top:top + ch, left:left + cw]
    if x.shape[-2:] != (size, size):
        # area averaging when shrinking (no aliasing), bilinear when growing
        mode = "area" if x.shape[-1] >= size and x.shape[-2] >= size else "bilinear"
        x = F.interpolate(x, size=(size, size), mode=mode, **({"align_corners": False} if mode == "bilinear" else {}))
    if gray:
        x = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
    return x.flatten(1)


def _check_crop(crop: float) -> float:
    if not 0.0 < crop <= 1.0:
        raise ModelError(f"crop={crop}: the centre-crop fraction must lie in (0, 1]")
    return float(crop)


class RawPixelEmbedder(Embedder):
    """Raw pixels: resize, optionally gray, subtract the image's own mean, L2-normalise.

    With the mean removed, the Euclidean distance of two such vectors is ``sqrt(2 - 2 r)`` where ``r``
    is the normalised cross-correlation of the two images: insensitive to brightness and contrast.

    Args:
        size: working side in pixels.
        gray: use luminance only.
        crop: centre-crop fraction of the input kept before resizing (1 = the whole crop).
    """

    def __init__(self, size: int = 32, gray: bool = True, crop: float = 1.0):
        if size < 1:
            raise ModelError(f"size={size} must be >= 1")
        self.size, self.gray, self.crop = int(size), bool(gray), _check_crop(crop)
        self.input_size = self.size
        self.name = f"raw(size={self.size},gray={self.gray},crop={self.crop:g})"

    @property
    def dim(self) -> int:
        return self.size * self.size * (1 if self.gray else 3)

    def _embed_batch(self, images: torch.Tensor) -> torch.Tensor:
        x = _pixel_features(images, self.size, self.gray, self.crop)
        return x - x.mean(1, keepdim=True)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "kind": "raw", "size": self.size, "gray": self.gray, "crop": self.crop}


class PCAEmbedder(Embedder):
    """Eigenfaces: project resized (gray) pixels onto the leading principal components of training faces.

    The mean face and the components come from :meth:`fit` (scikit-learn's PCA); the projection is
    L2-normalised, so distances compare the direction in face space (cosine), not its length.
    With ``whiten=True`` each component is divided by its standard deviation first, so small-variance
    directions count as much as the lighting-dominated leading ones.

    Args:
        n_components: components kept (capped at the number of training images).
        size: working side in pixels.
        whiten: scale components to unit variance.
        gray: use luminance only.
        crop: centre-crop fraction of the input kept before resizing.
    """

    needs_fit = True

    def __init__(self, n_components: int = 128, size: int = 64, whiten: bool = False, gray: bool = True,
                 crop: float = 1.0):
        if n_components < 1 or size < 1:
            raise ModelError(f"n_components={n_components} and size={size} must be >= 1")
        self.n_components, self.size = int(n_components), int(size)
        self.whiten, self.gray, self.crop = bool(whiten), bool(gray), _check_crop(crop)
        self.input_size = self.size
        self.name = (f"pca(n={self.n_components},size={self.size},whiten={self.whiten},gray={self.gray},"
                     f"crop={self.crop:g})")
        self.pca = None

    @property
    def dim(self) -> int:
        return int(self.pca.n_components_) if self.pca is not None else self.n_components

    def _fit(self, images: torch.Tensor, labels: np.ndarray | None) -> None:
        from sklearn.decomposition import PCA
        from threadpoolctl import threadpool_limits

        # in chunks: a float copy of ten thousand 112 px crops at once would take gigabytes
        x = torch.cat([_pixel_features(images[i:i + 1024], self.size, self.gray, self.crop)
                       for i in range(0, images.shape[0], 1024)]).numpy()
        n = min(self.n_components, x.shape[0] - 1, x.shape[1])
        if n < self.n_components:
            _logger.warning("%s: only %d training images, keeping %d components", self.name, x.shape[0], n)
        # exact SVD on small sets; randomized (power iterations) on large ones, where faces' fast-decaying
        # spectrum keeps it accurate and an exact SVD of ~10k x 4096 would take minutes
        solver = "full" if min(x.shape) <= 2000 else "randomized"
        pca = PCA(n_components=n, whiten=self.whiten, svd_solver=solver, random_state=0)
        # a small SVD is fastest on one BLAS thread (threads spin-wait, badly so on a busy machine)
        with threadpool_limits(1 if x.size < 2_000_000 else None):
            self.pca = pca.fit(x)

    def _embed_batch(self, images: torch.Tensor) -> torch.Tensor:
        if self.pca is None:
            raise ModelError(f"{self.name} is not fitted: call fit(train_images) first (it returns the fitted copy)")
        x = _pixel_features(images, self.size, self.gray, self.crop).numpy()
        return torch.from_numpy(self.pca.transform(x).astype(np.float32))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "kind": "pca", "n_components": self.n_components, "size": self.size,
                "whiten": self.whiten, "gray": self.gray, "crop": self.crop}


class NetworkEmbedder(Embedder):
    """An iznet embedding network in eval mode.

    Args:
        model: an ``iznet.models`` network mapping normalised (B, 3, S, S) to (B, D).
        input_size: side the crops are resized to (default: ``model.input_size``).
        device: where to run (default: CUDA when present, else CPU). The model is moved there.
        tta: also embed the horizontally flipped crop, add the two embeddings, renormalise.
        trained: False for random weights (reported, and the CLI warns).
        name: description stored with results.
        zooms: more test-time views: for each value, the crop's centre of that share of its side, resized
            back (:func:`iznet.models.preprocess.zoom_view`; flipped too with ``tta``); every view's unit
            embedding is added, then the sum renormalised. A checkpoint stores them as ``meta["tta_zooms"]``.
    """

    def __init__(self, model: torch.nn.Module, input_size: int | None = None, device: str | torch.device | None = None,
                 tta: bool = False, trained: bool = True, name: str | None = None, zooms: Any = ()):
        from iznet.models.preprocess import check_zooms

        from iznet.utils.device import default_device

        self.device = default_device(str(device) if device is not None else None)
        self.model = model.to(self.device)
        size = input_size if input_size is not None else getattr(model, "input_size", None)
        if size is None:
            raise ModelError(f"{type(model).__name__} has no input_size; pass input_size=")
        self.input_size = int(size)
        self.tta, self.trained = bool(tta), bool(trained)
        self.zooms = check_zooms(zooms, "NetworkEmbedder zooms")
        self.name = name or type(model).__name__
        self._dim: int | None = getattr(model, "embedding_dim", None)
        self.calibration: dict | None = None

    @property
    def dim(self) -> int:
        return int(self._dim) if self._dim is not None else 128

    def _embed_batch(self, images: torch.Tensor) -> torch.Tensor:
        from iznet.models import preprocess
        from iznet.models.preprocess import sum_of_views
        from iznet.utils.device import autocast, cpu_channels_last

        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad(), autocast(self.device):
                x = preprocess(images.to(self.device, non_blocking=True), self.input_size)
                e = sum_of_views(self.model, x, self.tta, self.zooms, prepare=cpu_channels_last)
        finally:
            self.model.train(was_training)
        self._dim = int(e.shape[1])
        return e.float()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "kind": "network", "tta": self.tta, "zooms": list(self.zooms),
                "device": str(self.device)}


class EnsembleEmbedder(Embedder):
    """Several embedders used as one: ``e(x) = [e_1(x), ..., e_n(x)] / sqrt(n)`` (each ``e_i`` unit length).

    The result is unit length, and ``|e(x) - e(y)|^2 = mean_i |e_i(x) - e_i(y)|^2``: the ensemble's
    distance fuses the members' distances (their root mean square), which is why concatenation is used
    and not a sum: independently trained networks embed into unrelated coordinate systems, so adding
    their vectors would mix unrelated directions. The dimension is the sum of the members'.
    Members may differ in input size (each resizes the crops itself) and kind.

    Args:
        members: two or more embedders, fitted already if they need fitting.
        name: description stored with results (default: the members' names joined by ``+``).

    Raises:
        ModelError: fewer than two members, or a member that is not an :class:`Embedder`.
    """

    def __init__(self, members: list[Embedder], name: str | None = None):
        members = list(members)
        if len(members) < 2:
            raise ModelError(f"an ensemble needs at least two embedders, got {len(members)}")
        bad = [type(m).__name__ for m in members if not isinstance(m, Embedder)]
        if bad:
            raise ModelError(f"ensemble members must be embedders, got {', '.join(bad)}")
        self.members = members
        self.needs_fit = any(m.needs_fit for m in members)
        self.trained = all(m.trained for m in members)
        self.input_size = max(int(m.input_size) for m in members)
        crops = sorted({m.face_crop for m in members})
        if len(crops) > 1:
            raise ModelError(f"ensemble members use different face crops ({', '.join(crops)}); combine embedders "
                             "trained on the same crop convention")
        self.face_crop = crops[0]
        self.name = name or "+".join(m.name for m in members)

    @property
    def dim(self) -> int:
        return sum(m.dim for m in self.members)

    def fit(self, images: torch.Tensor, labels: np.ndarray | None = None) -> "EnsembleEmbedder":
        if not self.needs_fit:
            return self
        fitted = copy.copy(self)
        fitted.members = [m.fit(images, labels) for m in self.members]
        fitted.needs_fit = False
        return fitted

    def _embed_batch(self, images: torch.Tensor) -> torch.Tensor:
        parts = [torch.from_numpy(m.embed(images, batch_size=max(1, images.shape[0]))) for m in self.members]
        return torch.cat(parts, dim=1) / float(len(parts)) ** 0.5

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "kind": "ensemble", "members": [m.describe() for m in self.members]}


def _parse_value(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    try:
        return int(low)
    except ValueError:
        pass
    try:
        return float(low)
    except ValueError:
        raise ModelError(f"cannot read {text!r} as a number or true/false") from None


_BASELINES = {
    # spec name -> (class, name of the positional argument, allowed keywords)
    "raw": (RawPixelEmbedder, "size", {"size", "gray", "crop"}),
    "pca": (PCAEmbedder, "n_components", {"n_components", "n", "size", "whiten", "gray", "crop"}),
}

SPEC_HELP = ("'raw[:SIZE]', 'pca[:N]' (options after a comma, e.g. 'pca:64,whiten=true,size=48,crop=0.8'), "
             "a model name (random weights), an iznet checkpoint file, or several joined by '+' (an ensemble)")


def _baseline(spec: str) -> Embedder:
    head, _, rest = spec.partition(":")
    cls, positional, allowed = _BASELINES[head]
    kwargs: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, val = item.partition("=")
        if not eq:
            key, val = positional, item
        key = "n_components" if key == "n" else key.strip()
        if key not in allowed:
            raise ModelError(f"unknown option {key!r} in embedder {spec!r}; {head} takes {', '.join(sorted(allowed))}")
        kwargs[key] = _parse_value(val)
    return cls(**kwargs)


def ensemble_members(spec: str) -> list[str] | None:
    """The member specs of an ensemble spec (``"a.pt+b.pt"``), or None when ``spec`` is not one (no ``+``,
    or an existing file whose name has one).

    Raises:
        ModelError: an empty member (``"a.pt+"``).
    """
    text = str(spec).strip()
    if "+" not in text or Path(text).expanduser().exists():
        return None
    parts = [p.strip() for p in text.split("+")]
    if not all(parts):
        raise ModelError(f"ensemble {text!r} has an empty member: join two or more embedders with '+', "
                         f"e.g. 'a.pt+b.pt'")
    return parts


def load_embedder(spec: str, device: str | torch.device | None = None, tta: bool | None = None) -> Embedder:
    """Build an embedder from a string.

    Args:
        spec: ``"raw"``, ``"raw:24"``, ``"pca"``, ``"pca:64"``, ``"pca:128,whiten=true,size=48"``, a
            registered model name (random weights: ``.trained`` is False), or a checkpoint path saved
            with ``kind="embedder"``; or several of these joined by ``+`` (``"a.pt+b.pt"``): an
            :class:`EnsembleEmbedder` of them.
        device: device of a network (default: automatic).
        tta: flip test-time augmentation of a network; None uses the checkpoint's ``meta["tta"]``
            (False when absent).

    Raises:
        ModelError: unknown name, missing or malformed checkpoint, bad option.
    """
    spec = str(spec).strip()
    head = spec.partition(":")[0]
    path = Path(spec)
    if path.is_file():
        return _from_checkpoint(path, device, tta)
    parts = ensemble_members(spec)
    if parts:
        members = []
        for part in parts:
            try:
                members.append(load_embedder(part, device=device, tta=tta))
            except ModelError as e:
                raise ModelError(f"ensemble {spec!r}, member {part!r}: {e}") from None
        return EnsembleEmbedder(members)
    if head in _BASELINES:
        return _baseline(spec)
    if path.suffix in (".pt", ".pth", ".ckpt", ".safetensors") or "/" in spec:
        raise ModelError(f"checkpoint {spec} does not exist")
    from iznet.models import create_model

    try:
        model = create_model(spec)
    except ModelError as e:
        raise ModelError(f"unknown embedder {spec!r}: use {SPEC_HELP} ({e})") from None
    return NetworkEmbedder(model, device=device, tta=bool(tta), trained=False, name=f"{spec}(untrained)")


def _from_checkpoint(path: Path, device, tta: bool | None) -> NetworkEmbedder:
    from iznet.utils.checkpoint import load_checkpoint
    from iznet.models import create_model

    ck = load_checkpoint(path, kind="embedder")
    name, kwargs = ck.get("model"), ck.get("model_kwargs") or {}
    if not isinstance(name, str) or not isinstance(kwargs, dict) or not isinstance(ck.get("state_dict"), dict):
        raise ModelError(f"{path}: checkpoint lacks 'model', 'model_kwargs' or 'state_dict'")
    model = create_model(name, **kwargs)
    try:
        model.load_state_dict(ck["state_dict"])
    except RuntimeError as e:
        raise ModelError(f"{path}: weights do not fit model {name!r} ({str(e).splitlines()[0]})") from None
    meta = ck.get("meta") or {}
    use_tta = bool(meta.get("tta", False)) if tta is None else bool(tta)
    emb = NetworkEmbedder(model, input_size=meta.get("input_size"), device=device, tta=use_tta, trained=True,
                          name=f"{name}@{path.name}", zooms=_checkpoint_zooms(meta, path))
    cal = meta.get("calibration")
    if isinstance(cal, dict) and isinstance(cal.get("threshold"), (int, float)) and math.isfinite(cal["threshold"]):
        emb.calibrated_threshold = float(cal["threshold"])
        emb.calibration = dict(cal)
    emb.face_crop = _crop_convention(meta.get("crop", "box"), path)
    emb.source = str(path.resolve())  # recorded by the galleries it enrols into
    return emb


def _checkpoint_zooms(meta: dict, path: Path) -> tuple[float, ...]:
    """A checkpoint's test-time zoom views (``meta["tta_zooms"]``; none when absent)."""
    from iznet.models.preprocess import check_zooms

    return check_zooms(meta.get("tta_zooms"), f"{path}: meta tta_zooms")


def _crop_convention(value: Any, where: Any) -> str:
    from iznet.data.align import CROP_CONVENTIONS

    if value not in CROP_CONVENTIONS:
        raise ModelError(f"{where}: unknown face crop convention {value!r}; expected one of "
                         f"{', '.join(CROP_CONVENTIONS)}")
    return str(value)
