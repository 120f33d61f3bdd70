"""Video super-resolution frame by frame (paper 004, §II-B) and synthetic face clips to show it on.

Paper 004 extracts the frames of a ChokePoint surveillance video with ffmpeg (30 fps), downsamples
them, super-resolves every frame with the SRGAN generator and reassembles the SR frames into a
video with ffmpeg. :func:`super_resolve_video` does the same for any video file imageio's ffmpeg
plugin can read (``pip install imageio imageio-ffmpeg``; the plugin ships its own ffmpeg binary):
it streams frames in batches through ``sr_fn`` (uint8 (N, h, w, 3) → uint8 (N, r·h, r·w, 3)) and
writes the SR video, or ``LR | SR | HR`` side by side when reference frames are given.

Any user-given file: :func:`upscale_video` (``path_in, path_out, model``) runs a trained generator
over every frame of a video (a progress bar counts frames; an unreadable or empty file is a
:class:`~facefill.errors.DataError` naming it). The generator is fully convolutional, so frames of any
size work; the model was trained on faces of the LR size, so downscale a video first when its faces
are much larger than that. ``facefill upscale`` on the command line calls this function.

The ChokePoint video is not available offline, so :func:`pan_zoom_clip` builds a short clip from
one face image: a slow zoom and pan (a camera drifting over the face), each frame Lanczos-resized
to the HR size; :func:`facefill.models.srgan.make_lr` then gives the LR clip.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import ConfigError, DataError


def _imageio():
    try:
        import imageio.v2 as iio
        import imageio_ffmpeg  # noqa: F401  (the ffmpeg plugin's binary)
    except ImportError:
        raise ConfigError("video needs imageio with its ffmpeg plugin: `pip install imageio imageio-ffmpeg`.") from None
    return iio


def pan_zoom_clip(image: np.ndarray, n_frames: int, size: int, zoom: tuple[float, float] = (1.0, 0.6),
                  pan: tuple[float, float] = (-0.15, 0.15)) -> np.ndarray:
    """uint8 (n_frames, size, size, 3): square crops of ``image`` whose side shrinks from ``zoom[0]`` to
    ``zoom[1]`` of the image while the centre moves horizontally by ``pan`` (fractions of the free
    margin), each Lanczos-resized to ``size``."""
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[-1] != 3:
        raise DataError(f"pan_zoom_clip needs one uint8 (H, W, 3) image, got {img.dtype} {img.shape}.")
    if n_frames < 1 or not 0 < zoom[1] <= 1 or not 0 < zoom[0] <= 1:
        raise ConfigError(f"n_frames={n_frames} must be >= 1 and zoom={zoom} fractions in (0, 1].")
    h, w = img.shape[:2]
    pil = Image.fromarray(img)
    frames = np.empty((n_frames, size, size, 3), np.uint8)
    for i, t in enumerate(np.linspace(0.0, 1.0, n_frames)):
        side = min(h, w) * ((1 - t) * zoom[0] + t * zoom[1])
        cx = w / 2 + ((1 - t) * pan[0] + t * pan[1]) * (w - side)
        cx = float(np.clip(cx, side / 2, w - side / 2))
        cy = h / 2
        box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
        frames[i] = np.asarray(pil.resize((size, size), Image.LANCZOS, box=box))
    return frames


def _open_writer(iio, path: Path, fps: float):
    """An H.264 MP4 writer (yuv420p: H and W should be multiples of 16)."""
    return iio.get_writer(path, format="FFMPEG", fps=fps, codec="libx264", quality=8, macro_block_size=16,
                          ffmpeg_log_level="error")


def write_video(frames: np.ndarray, path: str | Path, fps: float = 10.0) -> Path:
    """Write uint8 (N, H, W, 3) frames as H.264 MP4 (yuv420p: H and W should be multiples of 16), atomically."""
    from .files import atomic_output

    iio = _imageio()
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise DataError(f"write_video needs uint8 (N, H, W, 3) frames, got {frames.dtype} {frames.shape}.")
    path = Path(path)
    with atomic_output(path) as tmp, _open_writer(iio, tmp, fps) as w:
        for f in frames:
            w.append_data(f)
    return path


def read_video(path: str | Path) -> tuple[np.ndarray, float]:
    """All frames of a video file as uint8 (N, H, W, 3), and its frame rate."""
    iio = _imageio()
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no video file {path}.")
    with iio.get_reader(path) as r:
        fps = float(r.get_meta_data().get("fps", 10.0))
        frames = np.stack([np.asarray(f)[..., :3] for f in r])
    return frames, fps


def _open_reader(iio, src: Path):
    """imageio's reader for ``src``, or a DataError naming the file when ffmpeg cannot decode it."""
    if not src.is_file():
        raise DataError(f"no video file {src}: give the path of a video imageio-ffmpeg can read (.mp4, .avi, .mov, ...).")
    try:
        return iio.get_reader(src, format="FFMPEG")
    except Exception as e:  # imageio raises OSError / ValueError / RuntimeError depending on the failure
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise DataError(f"cannot read {src} as a video ({first}): is it a video file ffmpeg can decode?") from None


def _nearest(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(f).resize((size[1], size[0]), Image.NEAREST)) for f in frames])


def super_resolve_video(src: str | Path, dst: str | Path, sr_fn: Callable[[np.ndarray], np.ndarray], *,
                        batch_size: int = 16, reference: np.ndarray | None = None, side_by_side: bool = True,
                        fps: float | None = None, progress: bool = False) -> dict:
    """Super-resolve every frame of video ``src`` with ``sr_fn`` and write ``dst``.

    ``sr_fn`` maps uint8 (N, h, w, 3) frames to uint8 (N, H, W, 3). With ``side_by_side`` the output
    shows the LR frame (nearest-neighbour enlarged) | SR, and | HR when ``reference`` frames (the
    ground truth, same count, H×W) are given. Returns frames, sizes and the SR throughput (frames/s,
    model time only, excluding decoding and encoding). ``progress``: a tqdm bar over the frames.

    Streamed: ``batch_size`` frames are decoded, super-resolved and encoded at a time, so memory does
    not grow with the video's length. The video is written to a temporary file beside ``dst`` and
    moved into place at the end: an error or Ctrl-C leaves no partial file and ``dst`` as it was.
    ``dst`` must not be ``src``.
    """
    from tqdm import tqdm

    from .files import atomic_output, same_file

    iio = _imageio()
    src, dst = Path(src), Path(dst)
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size}: must be >= 1.")
    if same_file(src, dst):
        raise ConfigError(f"the output {dst} is the input video: choose another output file.")
    sr_seconds, n, lr_shape, out_shape = 0.0, 0, None, None
    with _open_reader(iio, src) as reader, atomic_output(dst) as tmp:
        meta = reader.get_meta_data()
        fps = fps or float(meta.get("fps", 10.0))
        total = meta.get("nframes")
        writer = None
        bar = tqdm(total=int(total) if isinstance(total, (int, float)) and np.isfinite(total) else None,
                   disable=not progress, unit="frame", desc=f"upscale {src.name}")
        buf: list[np.ndarray] = []

        def flush():
            nonlocal sr_seconds, n, lr_shape, out_shape, writer
            lr = np.stack(buf)
            lr_shape = lr.shape[1:3]
            t0 = time.perf_counter()
            sr = np.asarray(sr_fn(lr))
            sr_seconds += time.perf_counter() - t0
            if sr.dtype != np.uint8 or sr.ndim != 4 or sr.shape[0] != len(lr):
                raise DataError(f"sr_fn must return uint8 (N, H, W, 3) frames, got {sr.dtype} {sr.shape}.")
            row = [sr]
            if side_by_side:
                row.insert(0, _nearest(lr, sr.shape[1:3]))
                if reference is not None:
                    ref = np.asarray(reference[n : n + len(lr)])
                    if ref.shape != sr.shape:
                        raise DataError(f"reference frames {ref.shape} do not match the SR frames {sr.shape}.")
                    row.append(ref)
            out = np.concatenate(row, axis=2) if len(row) > 1 else sr
            out_shape = out.shape[1:3]
            if writer is None:
                writer = _open_writer(iio, tmp, fps)
            for f in out:
                writer.append_data(f)
            n += len(lr)
            bar.update(len(lr))
            buf.clear()

        try:
            try:
                for frame in reader:
                    frame = np.asarray(frame)
                    if frame.ndim == 2:  # a grey video
                        frame = np.repeat(frame[..., None], 3, axis=2)
                    buf.append(frame[..., :3])
                    if len(buf) == batch_size:
                        flush()
            except (OSError, RuntimeError) as e:
                raise DataError(f"{src}: decoding failed after {n + len(buf)} frames ({str(e).strip()[:200]}): "
                                "the file may be truncated.") from None
            if buf:
                flush()
        finally:  # on success, error or Ctrl-C: the bar ends its line, ffmpeg is closed (atomic_output drops the file)
            bar.close()
            if writer is not None:
                writer.close()
        if n == 0:
            raise DataError(f"{src} has no frames.")
        if reference is not None and len(reference) != n:
            raise DataError(f"{len(reference)} reference frames for a video of {n} frames.")
    return {"frames": n, "lr_size": tuple(int(s) for s in lr_shape), "out_size": tuple(int(s) for s in out_shape),
            "fps_video": fps, "sr_frames_per_s": n / max(sr_seconds, 1e-9), "path": str(dst)}


def upscale_video(path_in: str | Path, path_out: str | Path, model, *, batch_size: int = 16, device="cpu", autocast=None,
                  side_by_side: bool = False, progress: bool = True) -> dict:
    """Super-resolve every frame of the video ``path_in`` with the generator ``model`` and write ``path_out``.

    ``model``: a trained SR generator (e.g. :class:`facefill.models.srgan.Generator`) mapping LR
    images in [-1, 1] (N, 3, h, w) to (N, 3, r·h, r·w); it runs in eval mode on ``device`` (under
    ``autocast``, a context factory, when given). ``side_by_side``: write LR (nearest) | SR instead of
    SR alone. Returns frames, sizes, the video's frame rate and the SR frames/s (model time only).
    Unreadable, empty or truncated files raise :class:`~facefill.errors.DataError` naming the file.
    """
    import torch

    from .adversarial import predict
    from .data import to_uint8

    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"model must be a trained generator (torch.nn.Module), got {type(model).__name__}.")
    device = torch.device(device)
    model = model.to(device)

    def sr_fn(frames: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        return to_uint8(predict(model, x, autocast))

    return super_resolve_video(path_in, path_out, sr_fn, batch_size=batch_size, side_by_side=side_by_side, progress=progress)
