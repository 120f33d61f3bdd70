"""Trained models as files: :func:`load` with one call (what :mod:`facefill.export` wrote).

Every :func:`facefill.train.fit` ends by writing ``<checkpoint_dir>/model.pt`` next to its
``last.pt`` (:func:`facefill.export.export`: inference weights, ``meta``, ``mask_kinds``, ``purpose``
and the alignment template ``landmarks``; the export names stay importable from here).

:func:`load` accepts that file, a training checkpoint ``last.pt`` or a folder holding either (a folder
of seed runs of one configuration, like ``models/00_context_encoder``, gives its first seed) and
rebuilds the task from the stored config — no default-config size mismatch.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import typing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import __version__, papers
from .errors import ConfigError, DataNotFoundError, FacefillError
from .export import (EXPORT_NAME, FORMAT, N_TEMPLATE, checkpoint_meta, export, export_path, task_init_args,  # noqa: F401  (re-exported)
                     task_mask_kinds, task_meta, task_purpose, training_landmarks)

#: task classes of checkpoints written before ``meta`` named the module (from the paper registry)
KNOWN_TASKS = papers.known_tasks()
#: tasks whose inference needs only a lighter sibling (SRGAN's content network is for training)
INFERENCE_TASK = {"SRGANTask": "SRResNetTask"}
#: kinds with free-form holes: a model trained on one accepts a user's mask image
FREE_FORM = ("any", "random_region", "random_blocks", "strokes_thin", "strokes_medium", "strokes_thick", "random_pixels")
#: upscale large images in tiles of this many LR pixels a side, each with this much context around it
#: (tiles change the result by at most a few grey levels near seams: tests/test_cli.py measures it)
UPSCALE_TILE, UPSCALE_MARGIN = 256, 24


# --------------------------------------------------------------------------- load

@dataclass
class Model:
    """A trained model ready to apply: the rebuilt task (modules in eval mode) and what it knows."""

    task: object
    meta: dict
    path: Path
    landmarks: np.ndarray | None  # (68, 2) alignment template in crop pixels, None when unknown
    device: torch.device

    @property
    def purpose(self) -> str:
        return self.meta.get("purpose") or task_purpose(self.task)

    @property
    def mask_kinds(self) -> tuple[str, ...]:
        kinds = self.meta.get("mask_kinds")
        return tuple(kinds) if kinds else task_mask_kinds(self.task)

    @property
    def image_size(self) -> int:
        cfg = self.task.cfg
        return int(getattr(cfg, "image_size", 0) or getattr(cfg, "hr_size", 0))

    def _to_input(self, images: np.ndarray) -> torch.Tensor:
        from .train import to_model_input

        return to_model_input(torch.from_numpy(np.array(images, np.uint8)), self.device, False)

    @staticmethod
    def _to_uint8(x: torch.Tensor) -> np.ndarray:
        return ((x.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()

    def inpaint(self, crops: np.ndarray, masks: torch.Tensor | None = None) -> np.ndarray:
        """Fill the holes of uint8 (N, S, S, 3) aligned crops (``masks`` (N, 1, S, S), 1 = missing;
        ``None``: the model's own default, e.g. the centre hole); uint8 crops back."""
        if self.purpose != "inpaint":
            raise ConfigError(f"{self.path} is not an inpainting model ({self.purpose}: {self.meta.get('task')}); it does not inpaint.")
        x = self._to_input(crops)
        out = self.task.inpaint(x, None if masks is None else masks.to(self.device, x.dtype))
        return self._to_uint8(out)

    def upscale(self, images: np.ndarray, tile: int = UPSCALE_TILE, margin: int = UPSCALE_MARGIN) -> np.ndarray:
        """Super-resolve uint8 (N, h, w, 3) images → uint8 (N, r·h, r·w, 3) (the generator is fully convolutional).

        Images larger than ``tile`` LR pixels on a side are processed in ``tile``² tiles, each with
        ``margin`` LR pixels of context on every side that are cut off again (as an image border
        would be), so memory stays bounded for any image size: a 6000×4000 photo at ×4 needs the
        output plus one tile's activations rather than 23 GB of activations at once.
        """
        if self.purpose != "upscale":
            raise ConfigError(f"{self.path} is not a super-resolution model ({self.purpose}: {self.meta.get('task')}); "
                              "`upscale` needs one, e.g. models/05_srgan_faces/...")
        from .adversarial import predict

        if tile < 1 or margin < 0:
            raise ConfigError(f"tile={tile} must be >= 1 and margin={margin} >= 0.")
        images = np.asarray(images)
        n, h, w = images.shape[:3]
        if h <= tile and w <= tile:
            return self._to_uint8(predict(self.task.generator, self._to_input(images)))
        r = int(self.task.cfg.scale)
        out = np.empty((n, h * r, w * r, 3), np.uint8)
        for y in range(0, h, tile):
            for x in range(0, w, tile):
                y0, x0 = max(y - margin, 0), max(x - margin, 0)
                y1, x1 = min(y + tile + margin, h), min(x + tile + margin, w)
                sr = self._to_uint8(predict(self.task.generator, self._to_input(images[:, y0:y1, x0:x1])))
                th, tw = min(tile, h - y), min(tile, w - x)
                out[:, y * r:(y + th) * r, x * r:(x + tw) * r] = sr[:, (y - y0) * r:(y - y0 + th) * r, (x - x0) * r:(x - x0 + tw) * r]
        return out


def _candidates(folder: Path) -> list[Path]:
    found = []
    for p in sorted(folder.rglob("*.pt")):
        if p.name == EXPORT_NAME or (p.name == "last.pt" and not (p.parent / EXPORT_NAME).exists()):
            found.append(p)
    return found


def resolve(path: str | Path) -> Path:
    """The model file behind ``path``: the file itself, ``<dir>/model.pt``, ``<dir>/last.pt``, or the
    first of several runs of one configuration under ``<dir>`` (e.g. seeds)."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise DataNotFoundError(f"no model at {path}: give a model.pt / last.pt file or a folder under models/ "
                                "(train it first with `dvc repro` or `python -m facefill.pipeline run SECTION`).")
    for name in (EXPORT_NAME, "last.pt"):
        if (path / name).is_file():
            return path / name
    found = _candidates(path)
    if not found:
        raise DataNotFoundError(f"{path} holds no trained model (no {EXPORT_NAME} or last.pt below it).")
    if len(found) > 1:
        metas = [_read(p, mmap=True)["meta"] for p in found]
        if any((m.get("task"), m.get("config"), m.get("init")) != (metas[0].get("task"), metas[0].get("config"), metas[0].get("init"))
               for m in metas):
            listing = "\n  ".join(str(p.parent) for p in found)
            raise ConfigError(f"{path} holds models of different configurations; choose one:\n  {listing}")
    return found[0]


def _read(path: Path, mmap: bool = False) -> dict:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as e:
        raise FacefillError(f"cannot read {path} as a facefill model ({type(e).__name__}: {str(e).splitlines()[0][:160]}).") from None
    if not isinstance(ckpt, dict) or "modules" not in ckpt or not isinstance(ckpt.get("meta"), dict):
        raise FacefillError(f"{path} is not a facefill model or checkpoint (no modules/meta): rerun its stage to write one.")
    return ckpt


def _build_config(cls, values: dict, path: Path):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{path} was written with config keys {unknown} that {cls.__name__} of facefill {__version__} "
                          "does not know (the model changed since, or the task's `cfg` is another config): retrain with this version.")
    kwargs = {}
    for k, v in values.items():
        default = fields[k].default
        kwargs[k] = tuple(v) if isinstance(v, list) and isinstance(default, tuple) else v
    return cls(**kwargs)


def build_task(meta: dict, path: Path):
    """A fresh task of the class and config ``meta`` records (see :func:`task_meta`)."""
    name = meta.get("task")
    module = meta.get("task_module") or KNOWN_TASKS.get(name)
    if not module or meta.get("config") is None:
        raise ConfigError(f"{path}: its meta names no known task with a dataclass config (task={name!r}); rerun its stage.")
    mod = importlib.import_module(module)
    cls = getattr(mod, INFERENCE_TASK.get(name, name), None)
    if cls is None:
        raise ConfigError(f"{path}: task {name} is not in {module} of facefill {__version__}; use the version that trained it.")
    hints = typing.get_type_hints(cls.__init__)
    cfg_cls = hints.get("cfg")
    if not dataclasses.is_dataclass(cfg_cls):
        raise ConfigError(f"{cls.__name__} takes no dataclass `cfg`: facefill.load cannot rebuild it.")
    cfg = _build_config(cfg_cls, meta["config"], path)
    params = inspect.signature(cls.__init__).parameters
    init = {k: v for k, v in (meta.get("init") or {}).items() if k in params}
    missing = [k for k, p in params.items() if k not in ("self", "cfg") and p.default is p.empty and k not in init
               and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if missing:
        raise ConfigError(f"{path}: {cls.__name__} needs {missing}, which this checkpoint does not record (written by facefill "
                          f"{meta.get('facefill_version')}); rerun its stage to write {EXPORT_NAME}.")
    return cls(cfg, **init)


def load(path: str | Path, device: str = "cpu") -> Model:
    """Rebuild a trained model from ``path`` (see :func:`resolve`) on ``device``, in eval mode."""
    from .runtime import resolve_device

    file = resolve(path)
    ckpt = _read(file)
    meta = dict(ckpt["meta"])
    task = build_task(meta, file)
    if "purpose" not in meta or "mask_kinds" not in meta:
        meta.update({k: v for k, v in task_meta(task).items() if k not in meta})
    dev = resolve_device(device)
    for k, m in task.modules.items():
        if k in ckpt["modules"]:
            try:
                m.load_state_dict(ckpt["modules"][k])
            except RuntimeError as e:
                raise FacefillError(f"{file}: the stored {k} weights do not fit {type(m).__name__} of this facefill "
                                    f"({str(e).splitlines()[0]} ...): the model code changed since it was trained; "
                                    "rerun its stage to retrain.") from None
        elif "discriminator" not in k:
            raise FacefillError(f"{file} has no weights for {k!r}.")
        m.to(dev).eval()
    template = ckpt.get("landmarks")
    return Model(task, meta, file, None if template is None else np.asarray(template, np.float32), dev)


def export_checkpoint(checkpoint: str | Path, out: str | Path, train_images) -> Path:
    """Export a training checkpoint (``last.pt`` of a run made before ``fit`` exported) to ``out``,
    with the alignment template of its ``train_images`` (the crops it was trained on)."""
    model = load(checkpoint)
    meta = {**model.meta, **{k: v for k, v in task_meta(model.task).items() if k not in model.meta}}
    return export(model.task, out, meta, train_images)


__all__ = ["EXPORT_NAME", "export_checkpoint", "Model", "export", "export_path", "load", "resolve", "task_mask_kinds", "task_meta",
           "task_purpose", "task_init_args", "training_landmarks", "checkpoint_meta", "N_TEMPLATE"]
