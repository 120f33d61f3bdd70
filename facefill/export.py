"""What a trained model says about itself, and the exported ``model.pt`` that :func:`facefill.load` reads.

Every :func:`facefill.train.fit` ends by writing ``<checkpoint_dir>/model.pt`` next to its
``last.pt`` (:func:`export`): the inference weights only (every module but the discriminators), plus

* ``meta`` (:func:`checkpoint_meta`, the record every training checkpoint carries too) — facefill
  version, task class and module, the task's dataclass config, the extra constructor arguments the
  task keeps as attributes (e.g. ``mask_kind``), the training config;
* ``mask_kinds`` — the masks the model was trained on (:func:`task_mask_kinds`), so that
  ``facefill inpaint`` refuses a mask the model never saw;
* ``purpose`` — ``inpaint``, ``upscale`` (super-resolution) or ``generate`` (an unconditional GAN);
* ``landmarks`` — the mean dlib landmarks (68, 2) of the training crops (:func:`training_landmarks`),
  the template photos are aligned to (:mod:`facefill.align`).

This module writes; :mod:`facefill.api` reads (``load``) and re-exports these names. It imports
neither :mod:`facefill.train` nor :mod:`facefill.api`, so both can import it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import inspect
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .errors import ConfigError

EXPORT_NAME = "model.pt"  # the exported model, next to the checkpoint
FORMAT = "facefill-model/1"
N_TEMPLATE = 32  # training crops whose mean landmarks form the alignment template
#: mask-kind spellings of facefill.masks → the names the CLI uses
_KIND_NAMES = {"center": "centre"}


# --------------------------------------------------------------------------- what a task is

def plain(v):
    """Only types that ``torch.load(weights_only=True)`` accepts; anything else becomes its str."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return str(v)


def task_mask_kinds(task) -> tuple[str, ...]:
    """The mask kinds a task trains on: its ``mask_kinds`` attribute (a class attribute or property
    of the task), spelled as the CLI spells them (``center`` → ``centre``); ``()`` for none."""
    kinds = getattr(task, "mask_kinds", ()) or ()
    return tuple(_KIND_NAMES.get(k, k) for k in ([kinds] if isinstance(kinds, str) else kinds))


def task_purpose(task) -> str:
    """``inpaint`` (fills holes), ``upscale`` (its config has a ``scale``) or ``generate``."""
    if hasattr(task, "inpaint"):
        return "inpaint"
    return "upscale" if hasattr(getattr(task, "cfg", None), "scale") else "generate"


def task_init_args(task) -> dict:
    """Constructor arguments besides ``cfg`` that the task keeps as same-named attributes (e.g.
    ``mask_kind``, ``mask_kwargs``) and that are plain values: enough to rebuild it."""
    out = {}
    for name, p in inspect.signature(type(task).__init__).parameters.items():
        if name in ("self", "cfg") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or not hasattr(task, name):
            continue
        value = getattr(task, name)
        if value is None or isinstance(value, (bool, int, float, str, list, tuple, dict)):
            out[name] = plain(value)
    return out


def task_meta(task) -> dict:
    """The additive part of a checkpoint's ``meta``: task module, init args, mask kinds, purpose."""
    return plain({"task_module": type(task).__module__, "init": task_init_args(task),
                  "mask_kinds": list(task_mask_kinds(task)), "purpose": task_purpose(task)})


def checkpoint_meta(task, cfg=None) -> dict:
    """What a checkpoint says about its model: facefill version, task class, model and training configs
    (``cfg``: the :class:`facefill.train.TrainConfig`, or None)."""
    task_cfg = getattr(task, "cfg", None)
    is_dc = dataclasses.is_dataclass(task_cfg) and not isinstance(task_cfg, type)
    return plain({
        "facefill_version": __version__,
        "task": type(task).__name__,
        "config": dataclasses.asdict(task_cfg) if is_dc else None,
        "train_config": dataclasses.asdict(cfg) if cfg is not None else None,
        **task_meta(task),  # task module, init args, mask kinds, purpose: enough for facefill.load
    })


# --------------------------------------------------------------------------- the alignment template

@lru_cache(maxsize=8)
def _template_cached(key: str, images_bytes: bytes, shape: tuple) -> tuple:
    from . import landmarks as lm

    images = np.frombuffer(images_bytes, np.uint8).reshape(shape)
    points, detected = lm.landmarks(images, box="detect")
    if detected.sum() < max(4, len(images) // 2):
        return None, int(detected.sum())
    return points[detected].mean(0).astype(np.float32), int(detected.sum())


def training_landmarks(images: np.ndarray, n: int = N_TEMPLATE) -> tuple[np.ndarray | None, int]:
    """Mean dlib landmarks (68, 2) of the first ``n`` training crops (detector + shape predictor, as
    :func:`facefill.align.find_faces` does on a photo) and how many crops had a face; ``None`` when
    fewer than half of them (or fewer than 4) had one (the images are not faces)."""
    x = np.ascontiguousarray(np.asarray(images[:n]))
    if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != np.uint8:
        raise ConfigError(f"training_landmarks needs uint8 (N, H, W, 3) crops, got {x.shape} {x.dtype}.")
    key = hashlib.sha256(x.tobytes()).hexdigest()
    return _template_cached(key, x.tobytes(), x.shape)


# --------------------------------------------------------------------------- export

def export_path(checkpoint_dir: str | Path) -> Path:
    return Path(checkpoint_dir) / EXPORT_NAME


def export(task, path: str | Path, meta: dict, train_images=None) -> Path:
    """Write the inference weights of ``task`` with ``meta`` (:func:`checkpoint_meta`) to ``path``;
    the alignment template comes from ``train_images`` (uint8 (N, H, W, 3)) for inpainting models.
    Written atomically."""
    path = Path(path)
    template, n_found = None, 0
    if meta.get("purpose") == "inpaint" and train_images is not None:
        try:
            template, n_found = training_landmarks(train_images)
        except ImportError:  # dlib missing: the CLI will say the model has no template
            template = None
    payload = {
        "format": FORMAT,
        "meta": meta,
        "modules": {k: m.state_dict() for k, m in task.modules.items() if "discriminator" not in k},
        "landmarks": None if template is None else torch.from_numpy(template),
        "landmarks_n": n_found,
    }
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


__all__ = ["EXPORT_NAME", "FORMAT", "N_TEMPLATE", "checkpoint_meta", "export", "export_path", "plain", "task_init_args",
           "task_mask_kinds", "task_meta", "task_purpose", "training_landmarks"]
