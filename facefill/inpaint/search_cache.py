"""Checkpoints for the latent search: a finished z-search is saved, and reused when nothing it depends on changed.

Paper 003's stage trains no network of its own: its "model" is 14+ searches of ~2 minutes each on a CPU.
A re-evaluated stage (a metric, a figure, a claim edited) or one interrupted half-way would search again
from the start. :func:`cached_inpaint` keys each search by everything that decides its result -- the
search configuration (seed included), the generator's, discriminator's and regressor's weights, the
images and masks, the precision and device, the recording options, and the hash of the search code
(:func:`facefill.codehash.code_fingerprint`) -- and keeps the :class:`SemanticResult` under that key.
Any change gives another key, so a stale result is never reused; a file that cannot be read is
reported and searched again (it is the stage's own cache, nothing a user wrote).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from pathlib import Path

import torch

from ..codehash import code_fingerprint
from .semantic import SemanticInpainter, SemanticResult


def _tensor_bytes(h, t: torch.Tensor) -> None:
    t = t.detach().cpu().contiguous()
    h.update(f"{tuple(t.shape)}{t.dtype}".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")


def _module_digest(module) -> str:
    h = hashlib.sha256()
    if module is not None:
        for name, t in module.state_dict().items():
            h.update(name.encode())
            _tensor_bytes(h, t)
    return h.hexdigest()


def search_key(search: SemanticInpainter, images: torch.Tensor, masks: torch.Tensor, salt: dict) -> str:
    """The hash of everything that decides ``search.inpaint(images, masks, ...)``'s result."""
    data = hashlib.sha256()
    _tensor_bytes(data, images)
    _tensor_bytes(data, masks)
    spec = {"cfg": dataclasses.asdict(search.cfg), "code": code_fingerprint(SemanticInpainter),
            "G": _module_digest(search.G), "D": _module_digest(search.D), "regressor": _module_digest(search.R),
            "data": data.hexdigest(), "salt": salt}
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:32]


def cached_inpaint(search: SemanticInpainter, images: torch.Tensor, masks: torch.Tensor, folder: str | Path | None,
                   autocast=None, salt: dict | None = None, used: set | None = None, **kw) -> SemanticResult:
    """``search.inpaint(images, masks, autocast, **kw)``, saved in ``folder`` and reused from there.

    ``salt``: what the key cannot see in the arguments but changes the result (the precision and device
    behind ``autocast``). ``used``: a set the checkpoint's path is added to (for :func:`prune`).
    ``folder`` ``None``: no cache."""
    if folder is None:
        return search.inpaint(images, masks, autocast, **kw)
    salt = {**(salt or {}), "inpaint_kwargs": kw}
    path = Path(folder) / f"zsearch_{search_key(search, images, masks, salt)}.pt"
    if used is not None:
        used.add(path)
    if path.is_file():
        try:
            result = torch.load(path, map_location=images.device, weights_only=False)
            if isinstance(result, SemanticResult):
                return result
            raise TypeError(f"holds a {type(result).__name__}, not a SemanticResult")
        except Exception as e:  # the stage's own cache file: search again rather than fail
            warnings.warn(f"z-search checkpoint {path} is unreadable ({e}); searching again.", stacklevel=2)
    result = search.inpaint(images, masks, autocast, **kw)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(result, tmp)
    os.replace(tmp, path)  # atomic: an interrupted save never leaves a half-written result under the key
    return result


def prune(folder: str | Path, used: set) -> list[Path]:
    """Delete the search checkpoints in ``folder`` that are not in ``used`` (results of an earlier
    configuration: they would only fill the disk). Returns what was deleted."""
    gone = [p for p in sorted(Path(folder).glob("zsearch_*.pt")) if p not in used]
    for p in gone:
        p.unlink()
    return gone


__all__ = ["cached_inpaint", "prune", "search_key"]
