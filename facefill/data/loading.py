"""The public loading API: ``load_faces`` (from the cache, else straight from the archive) and the
uint8 <-> [-1, 1] tensor conversions ``to_tensor`` / ``to_uint8``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from facefill.errors import ConfigError, DataError, DataNotFoundError

from .archives import _iter_members, _source_names
from .cache import _from_cache, _resolve_processed, _stale_note
from .decode import _BadImage, _check_size, _crop_kind, _decode_variants, _summarize
from .sources import _spec, find_archive
from .splits import SPLITS, TEST_FRACTION, VAL_FRACTION, _check_fraction, _warn_if_short, identities, split_indices

if TYPE_CHECKING:  # torch is imported lazily: `python -m facefill.data prepare` does not need it
    import torch

log = logging.getLogger("facefill.data")  # one logger for the whole package, named as before the split


def load_faces(dataset: str, size: int, split: str = "train", limit: int | None = None, *, crop: str = "default",
               data_dir=None, processed_dir=None, seed: int = 0, test_fraction: float = TEST_FRACTION,
               val_fraction: float = VAL_FRACTION, by_identity: bool = False) -> np.ndarray:
    """uint8 (N, size, size, 3): the first ``limit`` images of ``split`` ("train", "val", "test") in split order.

    Reads ``processed_dir`` (default data/processed) when ``prepare`` cached this
    (dataset, crop, size, seed, test_fraction, val_fraction, by_identity); else decodes
    only those images from the archive. Any unusable image among them raises DataError.
    ``by_identity=True``: identity-disjoint splits (``split_by_identity``).
    """
    spec = _spec(dataset)
    size = _check_size(size)
    kind = _crop_kind(spec, crop)
    _check_fraction(test_fraction, val_fraction)
    if split not in SPLITS:
        raise ConfigError(f"split={split!r}: use one of {SPLITS}")
    if limit is not None and (isinstance(limit, bool) or int(limit) < 0):
        raise ConfigError(f"limit={limit!r} must be None (all) or >= 0")
    if by_identity:
        identities(dataset, [])  # ConfigError now for datasets without identities

    cached = _from_cache(dataset, crop, size, split, limit, data_dir, processed_dir, seed, test_fraction,
                         val_fraction, by_identity)
    if cached is not None:
        _warn_if_short(dataset, split, limit, len(cached))
        return cached

    try:
        source = find_archive(dataset, data_dir)
    except DataNotFoundError as e:
        note = _stale_note(_resolve_processed(processed_dir))
        if note:
            raise DataNotFoundError(f"{e} Also, {note}") from None
        raise
    names = _source_names(source)
    wanted = split_indices(dataset, names, seed, test_fraction, data_dir, val_fraction=val_fraction,
                           by_identity=by_identity)[split][:limit]
    pos = {names[i]: p for p, i in enumerate(wanted)}
    images = np.zeros((len(wanted), size, size, 3), dtype=np.uint8)
    bad: dict[str, tuple[str, str]] = {}
    for name, data in _tqdm(_iter_members(source, pos), total=len(pos), desc=f"{dataset} {split}", leave=False,
                            disable=len(pos) < 1000):
        try:
            images[pos[name]] = _decode_variants(data, spec, [(kind, size)]).images[0]
        except _BadImage as e:
            bad[name] = (e.kind, e.reason)
    if bad:
        raise DataError(f"{len(bad)} {dataset} {split} image(s) in {source} are unusable:\n{_summarize(bad)}\n"
                        "Replace them with good copies, or load a different subset; "
                        "`python -m facefill.data prepare` lists every bad image.")
    log.info("%s/%s/%d %s: decoded %d images directly from %s (no matching cache in %s)", dataset, crop, size,
             split, len(images), source, _resolve_processed(processed_dir))
    _warn_if_short(dataset, split, limit, len(images))
    return images


def _tqdm(it, **kw):
    from tqdm import tqdm

    return tqdm(it, **kw)


def to_tensor(images_uint8: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) or (H, W, 3) -> float32 (N, 3, H, W) / (3, H, W) in [-1, 1]."""
    import torch

    a = np.asarray(images_uint8)
    if a.dtype != np.uint8 or a.ndim not in (3, 4) or a.shape[-1] != 3:
        raise DataError(f"to_tensor expects uint8 (N, H, W, 3) images, got {a.dtype} {a.shape}; "
                        "pass what load_faces returns")
    t = torch.from_numpy(np.ascontiguousarray(a)).movedim(-1, -3)
    return t.float().div_(127.5).sub_(1.0).contiguous()


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Inverse of to_tensor: [-1, 1] (N, 3, H, W) / (3, H, W) -> uint8 NHWC / HWC (clamped, rounded)."""
    import torch

    t = torch.as_tensor(images).detach().to("cpu", torch.float32)
    if t.ndim not in (3, 4) or t.shape[-3] != 3:
        raise DataError(f"to_uint8 expects (N, 3, H, W) or (3, H, W), got {tuple(t.shape)}")
    t = ((t + 1.0) * 127.5).round_().clamp_(0, 255)
    return t.to(torch.uint8).movedim(-3, -1).numpy().copy()
