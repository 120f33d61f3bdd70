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
Checkpoints hold modules, optimisers, step, RNG states and history, are written atomically and
loaded with ``weights_only=True``.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from .errors import ConfigError, TrainingDivergedError
from .runtime import autocast_factory, resolve_device, resolve_precision, set_seed


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

    def __post_init__(self):
        if self.steps < 1 or self.batch_size < 1:
            raise ConfigError(f"steps={self.steps}, batch_size={self.batch_size}: both must be >= 1.")


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
RESUMABLE_FIELDS = ("steps", "log_every", "sample_every", "checkpoint_every", "progress")


def config_fingerprint(*configs: Any) -> str:
    """Short hash of the configs that define a run: a checkpoint only resumes the same run."""
    def plain(c):
        if isinstance(c, TrainConfig):
            return {k: v for k, v in asdict(c).items() if k not in RESUMABLE_FIELDS}
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


def save_checkpoint(path: Path, task, step: int, history: list[dict], fingerprint: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "step": step,
        "fingerprint": fingerprint,
        "modules": {k: m.state_dict() for k, m in task.modules.items()},
        "optimizers": {k: o.state_dict() for k, o in task.optimizers.items()},
        "rng": _rng_state(),
        "history": history,
    }
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)  # atomic: a crash never leaves a half-written checkpoint


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


def fit(
    task,
    train_images,
    cfg: TrainConfig,
    out_dir: str | Path,
    checkpoint_dir: str | Path | None = None,
    sample_images=None,
    fingerprint_extra: Any = None,
) -> pd.DataFrame:
    """Train ``task`` on uint8 (N, H, W, 3) images for ``cfg.steps`` steps; returns the loss history.

    ``train_images`` may also be a tuple of such arrays with the same N (e.g. HR and LR images):
    the task then receives a tuple of batches. Writes ``out_dir/history.csv`` and sample grids
    ``out_dir/samples/step_XXXXXX.png``; checkpoints go to ``checkpoint_dir/last.pt``. When that
    file exists for the same configuration, training resumes from it (a finished run is not redone).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = Path(checkpoint_dir or out_dir / "checkpoints") / "last.pt"
    arrays = tuple(_as_uint8_tensor(a) for a in (train_images if isinstance(train_images, tuple) else (train_images,)))
    if len({a.shape[0] for a in arrays}) != 1:
        raise ConfigError("all training arrays must have the same number of images.")

    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    autocast = autocast_factory(device, precision)
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format

    set_seed(cfg.seed)
    for m in task.modules.values():
        m.to(device=device, memory_format=memory_format)
        m.train()
    task.configure(device)
    fingerprint = config_fingerprint(cfg, fingerprint_extra, getattr(task, "cfg", None))

    history: list[dict] = []
    start = 0
    if ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path, map_location=device)
        if ckpt["fingerprint"] == fingerprint and ckpt["step"] <= cfg.steps:
            for k, m in task.modules.items():
                m.load_state_dict(ckpt["modules"][k])
            for k, o in task.optimizers.items():
                o.load_state_dict(ckpt["optimizers"][k])
            _set_rng_state(ckpt["rng"])
            start, history = ckpt["step"], list(ckpt["history"])
            print(f"resuming from {ckpt_path} at step {start}/{cfg.steps}")
        else:
            stale = ckpt_path.with_name(f"stale-{ckpt['fingerprint']}.pt")
            os.replace(ckpt_path, stale)  # another configuration: keep it, but start afresh
            print(f"{ckpt_path} belongs to another configuration (or a longer run); moved it to {stale.name} and starting afresh")

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

    last_good = start
    t_last = time.perf_counter()
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, disable=not cfg.progress, mininterval=2.0, desc="train")
    for step in bar:
        logs = task.training_step(batch_at(step), autocast)
        values = {k: float(v) for k, v in logs.items()}
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if bad:
            write_history()
            raise TrainingDivergedError(
                f"step {step}: {', '.join(f'{k}={values[k]}' for k in bad)} is not finite. Training stopped; "
                f"the last good checkpoint ({ckpt_path}, step {last_good}) is kept. Try a lower learning rate, "
                "precision='fp32', or another seed."
            )
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            now = time.perf_counter()
            n_steps = cfg.log_every if done % cfg.log_every == 0 else done % cfg.log_every
            history.append({"step": done, **values, "images_per_s": n_steps * cfg.batch_size / max(now - t_last, 1e-9)})
            t_last = now
            bar.set_postfix({k: f"{v:.3g}" for k, v in list(values.items())[:4]})
        if cfg.sample_every and done % cfg.sample_every == 0 and done != cfg.steps:
            grid(done)
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            save_checkpoint(ckpt_path, task, done, history, fingerprint)
            last_good = done
            write_history()
    bar.close()
    write_history()
    grid(cfg.steps)
    for m in task.modules.values():
        m.eval()
    return pd.DataFrame(history)


def evaluate_batches(fn, images, batch_size: int, device, channels_last: bool = False) -> torch.Tensor:
    """Apply ``fn`` to uint8 NHWC ``images`` in batches on ``device``; returns fn's outputs on the CPU (float32)."""
    outs = []
    imgs = _as_uint8_tensor(images)
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
]
