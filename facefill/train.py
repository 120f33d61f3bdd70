"""One training loop for every model of the project (context encoders, DCGAN, SRGAN, ...).

A *task* owns its networks, optimisers and the maths of one optimisation step; :func:`fit` owns
everything around it: device placement, mixed precision, channels_last, the seeded batch order,
progress, sample grids, the loss history, checkpoints with exact resume, and the NaN guard.

A task is any object with

* ``modules``: ``dict[str, nn.Module]`` — everything that is trained or has state to checkpoint;
* ``configure(device)``: builds ``optimizers`` (``dict[str, Optimizer]``) once modules are placed;
* ``training_step(batch, autocast) -> dict[str, Tensor | float]``: one update, returns scalar logs;
* ``sample(batch, autocast) -> Tensor``: rows of images (N·k, 3, H, W) in [-1, 1] for the grid.

Batches are drawn without replacement inside each epoch from a permutation that is a pure function
of ``(seed, epoch)``, so a resumed run sees exactly the batches an uninterrupted run would.
Checkpoints hold modules, optimisers, step, RNG states, history and a ``meta`` record (facefill
version, task class, model and training configs), are written atomically and loaded with
``weights_only=True``.

Faults end in one clear message and lose nothing:

* Ctrl-C (or a kernel interrupt) raises :class:`facefill.errors.Interrupted` naming the checkpoint
  that is kept; rerunning resumes from it. A checkpoint being written is finished first.
* A save keeps the previous checkpoint (``last.pt`` → ``previous.pt``) only while the new one is
  moved into place, then deletes it: between saves a run holds ``last.pt`` (and, once finished,
  ``model.pt``), not a second full copy of the weights and optimiser state. A ``previous.pt`` left
  by a run killed mid-save is still used: an unreadable ``last.pt`` is moved aside to
  ``corrupt-<timestamp>.pt`` and the run resumes from ``previous.pt`` when that one belongs to the
  same run, else starts afresh.
* An output or checkpoint folder that cannot be written is reported before training starts.
* A checkpoint of another configuration, or trained by other code (the fingerprint covers the
  training code too, see :mod:`facefill.codehash`), is moved aside to ``stale-<fingerprint>.pt``;
  only the most recent such file is kept.

Everything ``fit`` has to tell goes through :func:`notice`.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import random
import signal
import sys
import tempfile
import threading
import time
from dataclasses import replace, asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from .errors import ConfigError, FacefillError, Interrupted, TrainingDivergedError
from .runtime import autocast_factory, resolve_device, resolve_precision, set_seed
from .export import checkpoint_meta, export, export_path
from .codehash import changed_code, code_fingerprint
from .profiling import timed


@dataclass
class TrainConfig:
    steps: int = 1000  # optimisation steps (one D and one G update each for GANs)
    batch_size: int = 64
    precision: str = "auto"  # fp32 | bf16 | fp16 (CUDA) | auto (bf16 on AMX CPUs and CUDA)
    channels_last: bool = True  # NHWC memory format for the conv nets
    device: str = "auto"  # auto (CUDA if present) | cpu | cuda | cuda:1 ...
    seed: int = 0  # seeds weights, batch order and every random draw of the run
    flip: bool = True  # random horizontal flips (the faces are aligned, so flips are label-free)
    log_every: int = 10  # history resolution, in steps
    sample_every: int = 0  # grid of the fixed sample batch every N steps (0: only at the end)
    checkpoint_every: int = 200  # steps between checkpoints (and at the end)
    progress: bool = True  # tqdm bar
    lr_decay_start: float = 1.0  # fraction of `steps` after which every learning rate falls linearly to 0 (1.0: constant)
    half_budget: bool = False  # also train the same run at half the steps, branched off this one (budget stability)

    def __post_init__(self):
        if self.steps < 1 or self.batch_size < 1:
            raise ConfigError(f"steps={self.steps}, batch_size={self.batch_size}: both must be >= 1.")
        if not 0.0 <= self.lr_decay_start <= 1.0:
            raise ConfigError(f"lr_decay_start={self.lr_decay_start}: a fraction of the steps in [0, 1] (1.0: no decay).")

    def lr_factor(self, step: int) -> float:
        """Multiplier of every base learning rate at ``step`` (0-based): 1, then linear to 0 at the end."""
        start = self.lr_decay_start * self.steps
        return 1.0 if step < start else max(self.steps - step, 0) / max(self.steps - start, 1e-9)


def _as_uint8_tensor(x) -> torch.Tensor:
    t = torch.as_tensor(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else x
    if t.dtype != torch.uint8 or t.dim() != 4 or t.shape[-1] != 3:
        raise ConfigError(f"training images must be uint8 (N, H, W, 3) arrays, got {tuple(t.shape)} {t.dtype}.")
    return t


def to_model_input(batch_uint8: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """uint8 NHWC → float32 NCHW in [-1, 1] on ``device`` (channels_last when asked)."""
    x = batch_uint8.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
    return x.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


class BatchOrder:
    """Index of the batch at step ``s``: epoch permutations seeded by (seed, epoch), no state to save."""

    def __init__(self, n: int, batch_size: int, seed: int):
        if n < 1:
            raise ConfigError("no training images: check the dataset and the n_train parameter.")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self._cache: dict[int, torch.Tensor] = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._cache:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._cache = {epoch: torch.randperm(self.n, generator=g)}
        return self._cache[epoch]

    def __call__(self, step: int) -> torch.Tensor:
        pos = torch.arange(step * self.batch_size, (step + 1) * self.batch_size)
        out = torch.empty_like(pos)
        for epoch in pos.div(self.n, rounding_mode="floor").unique().tolist():
            sel = pos // self.n == epoch
            out[sel] = self._perm(epoch)[pos[sel] % self.n]
        return out


#: TrainConfig fields that do not change what a step computes: a run may be resumed (or extended)
#: with other values of these.
#: ``validate_every`` is an argument of :func:`fit`, not a TrainConfig field, so it never enters the
#: fingerprint; it is listed so that it stays out should it ever become one.
RESUMABLE_FIELDS = ("steps", "log_every", "sample_every", "checkpoint_every", "progress", "validate_every", "half_budget")

HALF_DIR = "half"  # the half-budget run's folder inside a run's output and checkpoint folders


def half_config(cfg: TrainConfig) -> TrainConfig:
    """The same run at half the steps, with the same schedule shape (constant, then linear to 0)."""
    return replace(cfg, steps=max(cfg.steps // 2, 1), half_budget=False)


def half_branch_step(cfg: TrainConfig) -> int:
    """Where the half-budget run leaves the full one: until this step both use the constant rate on the
    same batches, so a copy of the full run's state there *is* the half run's state (bit for bit)."""
    return int(cfg.lr_decay_start * half_config(cfg).steps)


def config_fingerprint(*configs: Any) -> str:
    """Short hash of the configs that define a run: a checkpoint only resumes the same run."""
    def plain(c):
        if isinstance(c, TrainConfig):
            # with a decay the lr of every step depends on `steps`: a longer run is another run
            keep = {"steps"} if c.lr_decay_start < 1.0 else set()
            return {k: v for k, v in asdict(c).items() if k not in RESUMABLE_FIELDS or k in keep}
        return asdict(c) if hasattr(c, "__dataclass_fields__") else c

    blob = json.dumps([plain(c) for c in configs], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    # RNG states are CPU ByteTensors; map_location may have moved them to the training device
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def notice(msg: str) -> None:
    """Tell the user something about the run (resuming, a checkpoint moved aside, an interrupt).

    Printed with ``flush=True`` to ``sys.stdout`` — the notebook cell, or the terminal of a plain
    script. When stdout is redirected inside Python (a Jupyter / papermill kernel, a captured test)
    the line also goes to the process's own stderr, i.e. the terminal that started the kernel
    (``papermill`` run by hand). Inside an ipykernel, whose stderr file descriptor is piped back into
    the notebook, it is written to the kernel's saved copy of the original stderr, so the notebook
    does not show it twice. Under ``python -m facefill.pipeline run`` (``FACEFILL_PIPELINE=1``) the
    runner already echoes the kernel's stdout to the terminal, so stdout alone is used there.
    """
    print(msg, flush=True)
    if sys.stdout is sys.__stdout__ or os.environ.get("FACEFILL_PIPELINE") == "1":
        return  # stdout already reaches the terminal
    try:
        fd = getattr(sys.stderr, "_original_stdstream_copy", None)  # ipykernel's echo of the real stderr
        if isinstance(fd, int):
            os.write(fd, (msg + "\n").encode(errors="replace"))
        elif sys.__stderr__ is not None:
            print(msg, file=sys.__stderr__, flush=True)
    except (OSError, ValueError):
        pass  # no terminal to reach: stdout has it


@contextlib.contextmanager
def _interrupts_deferred():
    """Hold Ctrl-C until the block is done (a checkpoint is never left half-renamed), then raise it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    hit: list[int] = []
    old = signal.signal(signal.SIGINT, lambda signum, frame: hit.append(signum))
    try:
        yield
    finally:
        # None: a handler not installed from Python; the OS default is the closest we can restore
        signal.signal(signal.SIGINT, signal.SIG_DFL if old is None else old)
        if hit:  # deliver it now to whatever was there: Python's handler raises, SIG_IGN drops it, SIG_DFL exits
            signal.raise_signal(signal.SIGINT)


def previous_path(path: Path) -> Path:
    """Where ``save_checkpoint`` keeps the checkpoint it replaces while the new one is moved into place:
    ``last.pt`` → ``previous.pt``."""
    path = Path(path)
    return path.with_name("previous.pt" if path.name == "last.pt" else f"{path.stem}.previous{path.suffix}")


def _drop_previous(prev: Path) -> None:
    """The last step of a save: the new checkpoint is in place, the one it replaced is not needed."""
    prev.unlink(missing_ok=True)


def save_checkpoint(path: Path, task, step: int, history: list[dict], fingerprint: str,
                    cfg: TrainConfig | None = None, code: dict | None = None) -> None:
    """Write the checkpoint atomically: to a temporary file, then the current one → :func:`previous_path`,
    the new one → ``path``, and the previous one deleted (it only guards the swap; a ``previous.pt`` of an
    older layout goes too). Between saves the folder holds one checkpoint, not two."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a finished run whose schedule decays can never be continued (its `steps` are in the fingerprint), so
    # its optimiser state -- twice the weights for Adam -- is dead weight on disk
    final = cfg is not None and step >= cfg.steps and cfg.lr_decay_start < 1.0
    payload = {
        "step": step,
        "fingerprint": fingerprint,
        "code": code,  # facefill.codehash.code_fingerprint: names the files when a later run's code differs
        "modules": {k: m.state_dict() for k, m in task.modules.items()},
        "optimizers": {} if final else {k: o.state_dict() for k, o in task.optimizers.items()},
        "rng": _rng_state(),
        "history": history,
        "meta": checkpoint_meta(task, cfg),
    }
    tmp = path.with_suffix(".tmp")
    prev = previous_path(path)
    with _interrupts_deferred():
        torch.save(payload, tmp)
        if path.exists():
            os.replace(path, prev)  # the last good one stays until the new one is in place
        os.replace(tmp, path)  # atomic: a crash never leaves a half-written checkpoint under this name
        _drop_previous(prev)


def load_checkpoint(path: Path, map_location="cpu") -> dict:
    return torch.load(path, map_location=map_location, weights_only=True)


def load_modules(task, path: str | Path, device="cpu") -> int:
    """Load the trained weights of a finished (or interrupted) run into ``task``; returns its step."""
    ckpt = load_checkpoint(Path(path), map_location=device)
    for k, m in task.modules.items():
        m.load_state_dict(ckpt["modules"][k])
    return ckpt["step"]


def _save_grid(rows: torch.Tensor, n_cols: int, path: Path) -> None:
    from torchvision.utils import save_image

    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(rows.float().clamp(-1, 1), path, nrow=n_cols, normalize=True, value_range=(-1, 1), padding=2)


# --------------------------------------------------------------------------- faults around checkpoints

def _mb(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.1f} MB"


def _check_writable(folder: Path, what: str, param: str) -> None:
    """Fail before training when ``folder`` cannot be created or written (probe: a small temp file)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".facefill-write-probe-", dir=folder)
        try:
            os.write(fd, b"facefill")
        finally:
            os.close(fd)
            os.unlink(name)
    except OSError as e:
        raise FacefillError(
            f"cannot write to the {what} {folder} ({e.strerror or e}): make it writable or choose another {param}."
        ) from None


def _read_checkpoint(path: Path, device) -> dict | None:
    """The checkpoint at ``path``; when it cannot be read it is moved aside to ``corrupt-<timestamp>.pt``."""
    try:
        ckpt = load_checkpoint(path, map_location=device)
        if not isinstance(ckpt, dict) or not {"step", "fingerprint", "modules"} <= ckpt.keys():
            raise ValueError("not a facefill checkpoint")
        return ckpt
    except (MemoryError, torch.cuda.OutOfMemoryError):
        raise  # the machine, not the file
    except Exception as e:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside, n = path.with_name(f"corrupt-{stamp}.pt"), 1
        while aside.exists():
            aside, n = path.with_name(f"corrupt-{stamp}-{n}.pt"), n + 1
        os.replace(path, aside)
        reason = (str(e).strip().splitlines() or [""])[0].split(". ")[0].rstrip(".")[:160]  # first sentence
        notice(f"checkpoint {path} is unreadable ({type(e).__name__}: {reason}); moved it to {aside.name} "
               "(kept for inspection, delete it when done)")
        return None


def _prune_stale(folder: Path, keep: Path | None = None) -> tuple[int, int]:
    """Delete the ``stale-*.pt`` files of ``folder`` except ``keep`` (default: the newest); (count, bytes)."""
    stale = [f for f in folder.glob("stale-*.pt") if f.is_file()]
    if keep is None and stale:
        keep = max(stale, key=lambda f: f.stat().st_mtime)
    n = freed = 0
    for f in stale:
        if f != keep:
            freed += f.stat().st_size
            f.unlink()
            n += 1
    return n, freed


def _move_stale(path: Path, ckpt: dict, steps: int, code: dict | None = None) -> None:
    """Move a checkpoint of another run to ``stale-<fingerprint>.pt``, the only stale file kept.

    ``code``: the current run's :func:`facefill.codehash.code_fingerprint`; a checkpoint whose code hashes
    differ (or that has none: written before they were recorded) is reported as trained by different code."""
    stale = path.with_name(f"stale-{ckpt['fingerprint']}.pt")
    os.replace(path, stale)
    os.utime(stale)  # "most recent" = most recently moved aside
    prev = previous_path(path)
    if path.name != prev.name and prev.exists():
        prev.unlink()  # an older checkpoint of the same (stale) run: save_checkpoint rotates within one run
    n, freed = _prune_stale(path.parent, keep=stale)
    where = f"{stale} ({_mb(stale.stat().st_size)} on disk, the only stale checkpoint kept)"
    if code is not None and ckpt.get("code") != code:
        old = ckpt.get("code")
        what = (f"{', '.join(changed_code(old, code))} changed" if isinstance(old, dict) else
                "it records no code hash: written before training code was fingerprinted")
        msg = f"checkpoint {path} was trained by different code ({what}); retraining, moved it to {where}"
    else:
        why = (f"config changed: {path} belongs to another configuration"
               if ckpt["step"] <= steps else
               f"steps changed: {path} is at step {ckpt['step']}, beyond steps={steps}")
        msg = f"{why}; moved it to {where} and starting afresh"
    if n:
        msg += f"; deleted {n} older stale checkpoint(s), {_mb(freed)} freed"
    notice(msg)


def _find_resumable(ckpt_path: Path, fingerprint: str, steps: int, device,
                    code: dict | None = None) -> tuple[dict | None, Path | None]:
    """The checkpoint to resume from and its path: ``last.pt``, else ``previous.pt``, else none."""
    def matches(c):
        return c["fingerprint"] == fingerprint and c["step"] <= steps

    lost = False
    if ckpt_path.exists():
        ckpt = _read_checkpoint(ckpt_path, device)
        if ckpt is not None:
            if matches(ckpt):
                return ckpt, ckpt_path
            _move_stale(ckpt_path, ckpt, steps, code)
            return None, None
        lost = True
    prev = previous_path(ckpt_path)
    if prev.exists():
        ckpt = _read_checkpoint(prev, device)
        if ckpt is not None:
            if matches(ckpt):
                if lost:
                    notice(f"falling back to the previous checkpoint {prev} (step {ckpt['step']})")
                return ckpt, prev
            _move_stale(prev, ckpt, steps, code)
    if lost:
        notice(f"no usable checkpoint left in {ckpt_path.parent}: starting afresh")
    return None, None


def _validation(validate: Callable[[], dict], modules: dict) -> dict[str, float]:
    """Call ``validate`` without disturbing training: train/eval flags and RNG states are restored."""
    modes = [(m, m.training) for root in modules.values() for m in root.modules()]
    rng, py_rng, np_rng = _rng_state(), random.getstate(), np.random.get_state()
    try:
        values = validate()
    finally:
        for m, training in modes:
            m.training = training
        _set_rng_state(rng)
        random.setstate(py_rng)
        np.random.set_state(np_rng)
    if not isinstance(values, dict):
        raise ConfigError(f"validate() must return a dict of floats (e.g. {{'val_rec': 0.1}}), got {type(values).__name__}.")
    if {"step", "images_per_s"} & values.keys():
        raise ConfigError("validate() must not return the keys 'step' or 'images_per_s': name them e.g. 'val_rec'.")
    return {k: float(v) for k, v in values.items()}


def default_validate_every(steps: int, log_every: int) -> int:
    """``steps // 25`` as a multiple of ``log_every`` (rounded down, at least ``log_every``).

    Rounding down keeps ≥ 25 validation points (plus the final step) whenever
    ``log_every <= steps // 25``; shorter runs get one point per log row.
    """
    return max(log_every, (steps // 25) // log_every * log_every)


# --------------------------------------------------------------------------- the loop

def fit(
    task,
    train_images,
    cfg: TrainConfig,
    out_dir: str | Path,
    checkpoint_dir: str | Path | None = None,
    sample_images=None,
    fingerprint_extra: Any = None,
    validate: Callable[[], dict[str, float]] | None = None,
    validate_every: int | None = None,
    *,
    _code: dict | None = None,
) -> pd.DataFrame:
    """Train ``task`` on uint8 (N, H, W, 3) images for ``cfg.steps`` steps; returns the loss history.

    ``train_images`` may also be a tuple of such arrays with the same N (e.g. HR and LR images):
    the task then receives a tuple of batches. Writes ``out_dir/history.csv`` and sample grids
    ``out_dir/samples/step_XXXXXX.png``; checkpoints go to ``checkpoint_dir/last.pt`` (the one
    before it is kept as ``previous.pt`` only while a save is under way); at the end ``checkpoint_dir/model.pt`` holds the inference
    weights, configs and alignment template (:func:`facefill.export.export`, read by :func:`facefill.load`
    and the ``facefill`` command). When a checkpoint of the same configuration exists,
    training resumes from it (a finished run is not redone).

    ``validate`` (optional) returns held-out metrics such as ``{"val_rec": 0.12}``; it is called
    every ``validate_every`` steps (default :func:`default_validate_every`) and at the last step,
    and its values join the history row of that step (NaN in the other rows). It should put the
    modules it uses in eval mode and use ``torch.no_grad()``; ``fit`` restores every module's
    train/eval flag and the torch / NumPy / Python RNG states afterwards, so a run with validation
    trains bit-identically to one without. Its time is not counted in ``images_per_s``.

    Ctrl-C raises :class:`facefill.errors.Interrupted` (a ``KeyboardInterrupt`` and a
    ``FacefillError``) with a one-line message naming the checkpoint kept.

    ``cfg.half_budget``: also train the run at half the steps (:func:`half_config`), for budget
    stability: at :func:`half_branch_step` -- still in the constant-rate phase of both -- the state is
    saved as the half run's checkpoint (``checkpoint_dir/half/last.pt``), and after the full run that
    run is resumed from it and finished in ``out_dir/half`` / ``checkpoint_dir/half`` (its
    ``model.pt`` and ``history.csv`` there). It equals an independent run of half the steps bit for
    bit and costs only the steps after the branch (a quarter of the run with ``lr_decay_start`` 0.5).
    The task holds the full run's weights when ``fit`` returns; the half run's history is
    ``history.attrs["half_history"]``.
    """
    out_dir = Path(out_dir)
    ckpt_dir = Path(checkpoint_dir or out_dir / "checkpoints")
    ckpt_path = ckpt_dir / "last.pt"
    _check_writable(out_dir, "output folder", "output_dir")
    _check_writable(ckpt_dir, "checkpoint folder", "checkpoint_dir")
    arrays = tuple(_as_uint8_tensor(a) for a in (train_images if isinstance(train_images, tuple) else (train_images,)))
    if len({a.shape[0] for a in arrays}) != 1:
        raise ConfigError("all training arrays must have the same number of images.")
    if validate_every is not None and validate_every < 1:
        raise ConfigError(f"validate_every={validate_every}: must be >= 1 (or None for the default).")
    val_every = validate_every or default_validate_every(cfg.steps, cfg.log_every)

    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    autocast = autocast_factory(device, precision)
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format

    set_seed(cfg.seed)
    for m in task.modules.values():
        m.to(device=device, memory_format=memory_format)
        m.train()
    task.configure(device)
    # base rates before any checkpoint is loaded: the schedule is a function of the step (resume-exact)
    base_lrs = {k: [g["lr"] for g in o.param_groups] for k, o in task.optimizers.items()}
    # the code that trains is part of the run (issue 27 §6): the task's modules, the trainer's step-relevant
    # parts and the study module that called fit (facefill.codehash says what and why)
    code = _code if _code is not None else code_fingerprint(task, sys._getframe(1).f_globals.get("__name__"))
    fingerprint = config_fingerprint(cfg, fingerprint_extra, getattr(task, "cfg", None), code)
    half_cfg, branch = (half_config(cfg), half_branch_step(cfg)) if cfg.half_budget else (None, -1)
    half_ckpt = ckpt_dir / HALF_DIR / "last.pt"

    def save_branch(done: int) -> None:  # the half run's checkpoint: this state, under its own fingerprint
        if half_cfg is not None and done == branch:
            save_checkpoint(half_ckpt, task, done, [r for r in history if r["step"] <= done],
                            config_fingerprint(half_cfg, fingerprint_extra, getattr(task, "cfg", None), code), half_cfg, code)

    history: list[dict] = []
    start = 0
    n_stale, freed = _prune_stale(ckpt_dir)  # older layouts may hold several
    if n_stale:
        notice(f"deleted {n_stale} older stale checkpoint(s) in {ckpt_dir}, {_mb(freed)} freed")
    ckpt, resumed_from = _find_resumable(ckpt_path, fingerprint, cfg.steps, device, code)
    if ckpt is not None:
        for k, m in task.modules.items():
            m.load_state_dict(ckpt["modules"][k])
        for k, o in task.optimizers.items():
            if k in ckpt["optimizers"]:  # a finished decayed run keeps none (save_checkpoint): nothing left to train
                o.load_state_dict(ckpt["optimizers"][k])
        _set_rng_state(ckpt["rng"])
        start, history = ckpt["step"], list(ckpt["history"])
        notice(f"resuming from {resumed_from} at step {start}/{cfg.steps}")
    del ckpt

    order = BatchOrder(arrays[0].shape[0], cfg.batch_size, cfg.seed)
    flip_gen = torch.Generator().manual_seed(cfg.seed + 7)

    def batch_at(step: int):
        idx = order(step)
        flip_gen.manual_seed(cfg.seed * 7919 + step)  # flips are a function of the step: resume-exact
        flips = torch.rand(len(idx), generator=flip_gen) < 0.5 if cfg.flip else None
        out = []
        for a in arrays:
            b = a[idx]
            if flips is not None:
                b[flips] = b[flips].flip(2)
            out.append(to_model_input(b, device, cfg.channels_last))
        return out[0] if len(out) == 1 else tuple(out)

    fixed = None
    if sample_images is not None:
        s = tuple(_as_uint8_tensor(a) for a in (sample_images if isinstance(sample_images, tuple) else (sample_images,)))
        fixed = [to_model_input(a, device, cfg.channels_last) for a in s]
        fixed = fixed[0] if len(fixed) == 1 else tuple(fixed)

    def write_history():
        pd.DataFrame(history).to_csv(out_dir / "history.csv", index=False)

    def grid(step: int):
        if fixed is not None:
            rows = task.sample(fixed, autocast)
            n_cols = (fixed[0] if isinstance(fixed, tuple) else fixed).shape[0]
            _save_grid(rows, n_cols, out_dir / "samples" / f"step_{step:06d}.png")

    def kept() -> str:
        if good_path is None:
            return f"no checkpoint was written yet (the first comes at step {min(cfg.checkpoint_every, cfg.steps)})"
        return f"the checkpoint at step {good_step} ({good_path}) is kept"

    good_step, good_path = start, resumed_from
    current = start
    if start == 0:
        save_branch(0)  # lr_decay_start 0: the half run starts from the initial weights
    t_last = time.perf_counter()
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, disable=not cfg.progress, mininterval=2.0, desc="train")
    with timed("fit"):  # the training loop, validations included (facefill.profiling)
        try:
            for step in bar:
                current = done = step + 1
                if cfg.lr_decay_start < 1.0:
                    for k, o in task.optimizers.items():
                        for g, lr in zip(o.param_groups, base_lrs[k]):
                            g["lr"] = lr * cfg.lr_factor(step)
                logs = task.training_step(batch_at(step), autocast)
                values = {k: float(v) for k, v in logs.items()}
                bad = [k for k, v in values.items() if not math.isfinite(v)]
                if bad:
                    write_history()
                    raise TrainingDivergedError(
                        f"step {step}: {', '.join(f'{k}={values[k]}' for k in bad)} is not finite. Training stopped; "
                        f"{kept()}. Try a lower learning rate, precision='fp32', or another seed."
                    )
                row = None
                if done % cfg.log_every == 0 or done == cfg.steps:
                    now = time.perf_counter()
                    n_steps = cfg.log_every if done % cfg.log_every == 0 else done % cfg.log_every
                    row = {"step": done, **values, "images_per_s": n_steps * cfg.batch_size / max(now - t_last, 1e-9)}
                    history.append(row)
                    t_last = now
                    bar.set_postfix({k: f"{v:.3g}" for k, v in list(values.items())[:4]})
                if validate is not None and (done % val_every == 0 or done == cfg.steps):
                    t0 = time.perf_counter()
                    with timed("validation"):
                        val = _validation(validate, task.modules)
                    if row is None:
                        row = {"step": done}
                        history.append(row)
                    row.update(val)
                    t_last += time.perf_counter() - t0  # validation is not training throughput
                if cfg.sample_every and done % cfg.sample_every == 0 and done != cfg.steps:
                    grid(done)
                if done == branch:
                    with _interrupts_deferred():
                        save_branch(done)
                if done % cfg.checkpoint_every == 0 or done == cfg.steps:
                    with _interrupts_deferred():  # the file and what we say about it stay in step
                        save_checkpoint(ckpt_path, task, done, history, fingerprint, cfg, code)
                        good_step, good_path = done, ckpt_path
                    write_history()
            bar.close()
            write_history()
            grid(cfg.steps)
        except KeyboardInterrupt:
            bar.close()
            with contextlib.suppress(OSError):
                write_history()
            msg = f"interrupted at step {current}; {kept()}; rerun the same command to " + ("resume" if good_path else "start again")
            notice(msg)
            raise Interrupted(msg) from None
    for m in task.modules.values():
        m.eval()
    # the inference weights + config + alignment template, for facefill.load and the CLI
    export(task, export_path(ckpt_dir), checkpoint_meta(task, cfg), arrays[0].numpy())
    result = pd.DataFrame(history)
    if half_cfg is not None:
        notice(f"half-budget run: {half_cfg.steps} steps, branched at step {branch} (budget stability)")
        result.attrs["half_history"] = fit(task, train_images, half_cfg, out_dir / HALF_DIR, ckpt_dir / HALF_DIR,
                                           fingerprint_extra=fingerprint_extra, validate=validate, _code=code)
        load_modules(task, ckpt_path, device)  # the caller evaluates the full run
        for m in task.modules.values():
            m.eval()
    return result


def evaluate_batches(fn, images, batch_size: int, device, channels_last: bool = False) -> torch.Tensor:
    """Apply ``fn`` to uint8 NHWC ``images`` in batches on ``device``; returns fn's outputs on the CPU (float32)."""
    outs = []
    imgs = _as_uint8_tensor(images)
    with timed("inference"):
        for i in range(0, imgs.shape[0], batch_size):
            x = to_model_input(imgs[i : i + batch_size], device, channels_last)
            outs.append(fn(x).float().cpu())
    return torch.cat(outs)


def images_per_second(task, images: torch.Tensor, autocast, steps: int = 5, warmup: int = 2) -> float:
    """Median training throughput of ``task.training_step`` on a fixed batch (for the benchmark)."""
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        task.training_step(images, autocast)
        if images.is_cuda:
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return images.shape[0] / float(np.median(times))


__all__: Sequence[str] = [
    "TrainConfig",
    "fit",
    "BatchOrder",
    "to_model_input",
    "save_checkpoint",
    "load_checkpoint",
    "load_modules",
    "evaluate_batches",
    "images_per_second",
    "config_fingerprint",
    "checkpoint_meta",
    "previous_path",
    "default_validate_every",
    "notice",
]
