"""Trained models as files: export at the end of training, :func:`load` with one call.

Every :func:`facefill.train.fit` ends by writing ``<checkpoint_dir>/model.pt`` next to its
``last.pt``: the inference weights only (every module but the discriminators), plus

* ``meta`` — facefill version, task class and module, the task's dataclass config, the extra
  constructor arguments the task keeps as attributes (e.g. ``mask_kind``), the training config;
* ``mask_kinds`` — the masks the model was trained on (:func:`task_mask_kinds`), so that
  ``facefill inpaint`` refuses a mask the model never saw;
* ``purpose`` — ``inpaint``, ``upscale`` (super-resolution) or ``generate`` (an unconditional GAN);
* ``landmarks`` — the mean dlib landmarks (68, 2) of the training crops (:func:`training_landmarks`),
  the template photos are aligned to (:mod:`facefill.align`).

:func:`load` accepts that file, a training checkpoint ``last.pt`` or a folder holding either (a folder
of seed runs of one configuration, like ``models/00_context_encoder``, gives its first seed) and
rebuilds the task from the stored config — no default-config size mismatch.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import typing
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from . import __version__, papers
from .errors import ConfigError, DataNotFoundError, FacefillError

EXPORT_NAME = "model.pt"  # the exported model, next to the checkpoint
FORMAT = "facefill-model/1"

#: task classes of checkpoints written before ``meta`` named the module (from the paper registry)
KNOWN_TASKS = papers.known_tasks()
#: tasks whose inference needs only a lighter sibling (SRGAN's content network is for training)
INFERENCE_TASK = {"SRGANTask": "SRResNetTask"}
#: mask-kind spellings of facefill.masks → the names the CLI uses
_KIND_NAMES = {"center": "centre"}
#: kinds with free-form holes: a model trained on one accepts a user's mask image
FREE_FORM = ("any", "random_region", "random_blocks", "strokes_thin", "strokes_medium", "strokes_thick", "random_pixels")
N_TEMPLATE = 32  # training crops whose mean landmarks form the alignment template
#: upscale large images in tiles of this many LR pixels a side, each with this much context around it
#: (tiles change the result by at most a few grey levels near seams: tests/test_cli.py measures it)
UPSCALE_TILE, UPSCALE_MARGIN = 256, 24


# --------------------------------------------------------------------------- what a task is

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


def _plain(v):
    from .train import _plain as plain  # one definition of "what weights_only loading accepts"

    return plain(v)


def task_init_args(task) -> dict:
    """Constructor arguments besides ``cfg`` that the task keeps as same-named attributes (e.g.
    ``mask_kind``, ``mask_kwargs``) and that are plain values: enough to rebuild it."""
    out = {}
    for name, p in inspect.signature(type(task).__init__).parameters.items():
        if name in ("self", "cfg") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or not hasattr(task, name):
            continue
        value = getattr(task, name)
        if value is None or isinstance(value, (bool, int, float, str, list, tuple, dict)):
            out[name] = _plain(value)
    return out


def task_meta(task) -> dict:
    """The additive part of a checkpoint's ``meta``: task module, init args, mask kinds, purpose."""
    return _plain({"task_module": type(task).__module__, "init": task_init_args(task),
                   "mask_kinds": list(task_mask_kinds(task)), "purpose": task_purpose(task)})


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
    """Write the inference weights of ``task`` with ``meta`` (:func:`facefill.train.checkpoint_meta`)
    to ``path``; the alignment template comes from ``train_images`` (uint8 (N, H, W, 3)) for
    inpainting models. Written atomically."""
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
           "training_landmarks"]
