"""``facefill`` on the command line: apply a trained model to your own photos and videos.

    facefill inpaint photo.jpg --model models/00_context_encoder [--mask centre|facemask|mask.png] -o out.png
    facefill upscale face.png  --model models/05_srgan_faces/celeba_64_x2/seed0/SRGAN -o big.png
    facefill upscale clip.mp4  --model models/05_srgan_faces/celeba_64_x4/seed0/SRGAN -o big.mp4

Your files are safe: an output that is one of the inputs is refused, an existing output is replaced
only with ``--overwrite``, every output is checked (extension, folder) before a model is loaded, and
each is written to a temporary file moved into place at the end, so Ctrl-C or a full disk never
leaves half a file. Large images are upscaled in tiles (:meth:`facefill.api.Model.upscale`) and
videos are streamed, so memory does not grow with the image or the clip.

``inpaint`` finds every face (:mod:`facefill.align`), aligns it to the model's training crops, hides
the region of the chosen mask kind, lets the model fill it and pastes the filled region back into the
photo. A mask kind the model was not trained on is refused (the models say which kinds they know,
:attr:`facefill.api.Model.mask_kinds`); a user's mask image (white = hide, the photo's size) is
accepted by models trained on free-form holes. ``upscale`` super-resolves the whole image (the SR
generator is fully convolutional), or a video frame by frame (:func:`facefill.video.super_resolve_video`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .errors import FacefillError, MaskError
from .files import atomic_output, check_output, os_error

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
#: image files the commands write (each one PIL can save)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
_MASK_MAKER_NAMES = {"centre": "center"}  # CLI spelling → facefill.masks spelling
#: what a model is, in words (Model.purpose → phrase)
PURPOSE_WORDS = {"inpaint": "an inpainting", "upscale": "a super-resolution", "generate": "a generative (unconditional GAN)"}


def _image_suffixes_pil_reads() -> set[str]:
    Image.init()
    return {e.lower() for e in Image.registered_extensions()}


def read_image(path: str | Path) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise FacefillError(f"no image file {path}.")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except OSError as e:
        raise FacefillError(f"cannot read {path} as an image ({e}).") from None


def write_image(image: np.ndarray, path: str | Path) -> Path:
    """Save ``image`` to ``path`` atomically (a temporary file moved into place: never half a file)."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    with atomic_output(path) as tmp:
        Image.fromarray(image).save(tmp, format=fmt)
    return path


def _template(model) -> np.ndarray:
    if model.landmarks is not None:
        return model.landmarks
    from .face_masks import template_landmarks
    from .train import notice

    notice(f"{model.path} stores no landmark template (a checkpoint, not an exported model.pt): aligning to the "
           "mean CelebA-HQ crop instead; rerun its stage to write model.pt for the exact framing.")
    return template_landmarks(model.image_size, model.image_size)


def is_mask_file(mask: str) -> bool:
    """``--mask`` names a mask image (an existing file, or a name with an image extension), not a kind."""
    return Path(mask).is_file() or Path(mask).suffix.lower() in _image_suffixes_pil_reads()


def check_mask_kind(model, mask: str) -> str:
    """The kind of ``mask`` (a kind name or ``custom`` for a mask image), refused when the model never saw it."""
    from .api import FREE_FORM

    kinds = model.mask_kinds
    kind = "custom" if is_mask_file(mask) else mask
    ok = ("any" in kinds or kind in kinds or (kind == "custom" and any(k in FREE_FORM for k in kinds)))
    if not ok:
        what = "a mask image (free-form holes)" if kind == "custom" else f"the mask kind {kind!r}"
        raise MaskError(f"{model.path} was trained on {', '.join(kinds) or 'no masks'} only and never saw {what}: it would "
                        f"return garbage. Use --mask {kinds[0] if kinds else '...'} or a model trained on that kind.")
    return kind


def crop_mask(model, kind: str, crop: np.ndarray, points: np.ndarray, user_mask: np.ndarray | None, matrix) -> torch.Tensor:
    """(1, 1, S, S) mask (1 = hidden) of ``kind`` for one aligned crop (``points``: its landmarks)."""
    import cv2

    size = model.image_size
    if kind == "custom":
        warped = cv2.warpAffine(user_mask, matrix, (size, size), flags=cv2.INTER_NEAREST, borderValue=0)
        return torch.from_numpy((warped > 0.5).astype(np.float32))[None, None]
    if kind == "facemask":
        from .face_masks import face_masks

        return face_masks(crop[None], seed=0, points=points[None]).masks
    from .masks import make_masks

    name = _MASK_MAKER_NAMES.get(kind, kind)
    extra = dict(getattr(model.task, "mask_kwargs", {}) or {})
    if name == "center" and hasattr(model.task.cfg, "hole"):
        extra.setdefault("hole", model.task.cfg.hole)
    return make_masks(name, size, 1, seed=0, **extra)


def inpaint_photo(model, photo: np.ndarray, mask: str | None = None) -> dict:
    """Every face of ``photo`` aligned, hidden under ``mask`` (default: the model's first kind), filled
    and pasted back. Returns ``result`` (the photo), ``hidden`` (the photo with the holes shown grey),
    ``faces`` (how many)."""
    import cv2

    from .align import align_face, find_faces, paste_back, transform_points

    if model.purpose != "inpaint":
        raise FacefillError(f"{model.path} is {PURPOSE_WORDS.get(model.purpose, model.purpose)} model ({model.meta.get('task')}), "
                            "not an inpainting one; for super-resolution use `facefill upscale`.")
    mask = mask or (model.mask_kinds[0] if model.mask_kinds else None)
    if mask is None:
        raise MaskError(f"{model.path} records no mask kinds: pass --mask.")
    kind = check_mask_kind(model, mask)
    user_mask = None
    if kind == "custom":
        user_mask = (read_image(mask).mean(-1) > 127).astype(np.float32)
        if user_mask.shape != photo.shape[:2]:
            raise MaskError(f"the mask image {mask} is {user_mask.shape[1]}×{user_mask.shape[0]} px, the photo "
                            f"{photo.shape[1]}×{photo.shape[0]}: give a mask of the photo's size (white = hide).")
    faces = find_faces(photo)
    if not faces:
        raise FacefillError("no face found in the photo (dlib's detector needs a frontal face of at least ~40 px): "
                            "try a larger or more frontal photo.")
    template, size = _template(model), model.image_size
    result, hidden = photo.copy(), photo.copy()
    n_done = 0
    for points in faces:
        crop, matrix = align_face(photo, points, template, size)
        m = crop_mask(model, kind, crop, transform_points(points, matrix), user_mask, matrix)
        if m.sum() == 0:
            continue  # a user's mask that misses this face
        filled = model.inpaint(crop[None], m)[0]
        m2 = m[0, 0].numpy()
        result = paste_back(result, filled, m2, matrix)
        hidden = paste_back(hidden, np.full_like(crop, 128), m2, matrix, feather=0)
        n_done += 1
    if n_done == 0:
        raise MaskError(f"the mask {mask} covers none of the {len(faces)} face(s) found.")
    return {"result": result, "hidden": hidden, "faces": n_done}


def upscale_video(model, src: Path, dst: Path, batch_size: int = 8) -> dict:
    """Super-resolve a video frame by frame (streamed: memory does not grow with its length), with a
    progress bar over its frames."""
    from .video import super_resolve_video

    return super_resolve_video(src, dst, model.upscale, batch_size=batch_size, side_by_side=False, progress=True)


def _default_out(src: Path, what: str) -> Path:
    return src.with_name(f"{src.stem}_{what}{src.suffix if src.suffix.lower() in VIDEO_SUFFIXES else '.png'}")


def _model_file(path: str) -> str | None:
    """The model file ``--model`` names when it is a file (an output must never be it)."""
    return path if Path(path).is_file() else None


def check_inpaint_outputs(args) -> tuple[Path, Path | None]:
    """The result and ``--hidden`` paths of ``facefill inpaint``, refused before any work when they
    would write over an input, over each other, over an existing file (without ``--overwrite``), have
    an extension no image has, or lie under a file."""
    photo = Path(args.photo)
    inputs = {"photo": photo, "mask image": args.mask if args.mask and is_mask_file(args.mask) else None,
              "model": _model_file(args.model)}
    dst = check_output(Path(args.output) if args.output else _default_out(photo, "inpainted"), inputs=inputs,
                       overwrite=args.overwrite, suffixes=IMAGE_SUFFIXES, kind="image")
    hidden = None
    if args.hidden:
        hidden = check_output(args.hidden, inputs={**inputs, "result (-o)": dst}, overwrite=args.overwrite,
                              option="--hidden", suffixes=IMAGE_SUFFIXES, kind="image")
    return dst, hidden


def check_upscale_output(args) -> tuple[Path, Path, bool]:
    """Input, output and whether it is a video, checked before any model is loaded."""
    src = Path(args.input)
    if not src.is_file():
        raise FacefillError(f"no file {src}: give an image ({' '.join(IMAGE_SUFFIXES)}) or a video ({' '.join(VIDEO_SUFFIXES)}).")
    is_video = src.suffix.lower() in VIDEO_SUFFIXES
    suffixes, kind = (VIDEO_SUFFIXES, "video (the input is a video)") if is_video else (IMAGE_SUFFIXES, "image (the input is an image)")
    inputs = {"video" if is_video else "image": src, "model": _model_file(args.model)}
    dst = check_output(Path(args.output) if args.output else _default_out(src, "upscaled"), inputs=inputs,
                       overwrite=args.overwrite, suffixes=suffixes, kind=kind)
    return src, dst, is_video


def _upscale_image(model, image: np.ndarray) -> np.ndarray:
    try:
        return model.upscale(image[None])[0]
    except RuntimeError as e:  # the allocator's error even after tiling: say how much the output alone needs
        if "alloc" not in str(e).lower() and "memory" not in str(e).lower():
            raise
        h, w = image.shape[:2]
        r = model.task.cfg.scale
        need = h * r * w * r * 3 * 4 / 2**30
        raise FacefillError(f"out of memory upscaling a {w}×{h} image ×{r}: the output alone needs {need:.1f} GiB as float; "
                            "free memory or downscale the image first.") from None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="facefill", description="Apply a trained facefill model to your photos and videos. "
                                 "Your files are never written over: an output that exists needs --overwrite, and an "
                                 "output that is one of the inputs is refused.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("inpaint", help="hide a region of every face in a photo and let the model fill it")
    p.add_argument("photo")
    p.add_argument("--model", required=True, help="a model.pt / last.pt, or a folder holding one (a folder of seed runs gives "
                                                  "its first seed), e.g. models/00_context_encoder")
    p.add_argument("--mask", default=None, help="centre | facemask | another trained kind | mask.png (white = hide; "
                                                "the photo's size). Default: the model's first kind")
    p.add_argument("-o", "--output", default=None, help="output image (default: <photo>_inpainted.png)")
    p.add_argument("--hidden", default=None, help="also write the photo with the hidden region shown grey")
    p.add_argument("--overwrite", action="store_true", help="replace outputs that exist (never an input)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto")
    u = sub.add_parser("upscale", help="super-resolve an image or a video (frame by frame)")
    u.add_argument("input")
    u.add_argument("--model", required=True, help="a super-resolution model, e.g. models/05_srgan_faces/celeba_64_x2/seed0/SRGAN")
    u.add_argument("-o", "--output", default=None, help="output image or video (default: <input>_upscaled.<ext>)")
    u.add_argument("--overwrite", action="store_true", help="replace an output that exists (never the input)")
    u.add_argument("--batch-size", type=int, default=8, help="video frames per batch")
    u.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto")
    args = ap.parse_args(argv)
    dst = None
    try:
        from .api import load

        if args.cmd == "inpaint":
            dst, hidden = check_inpaint_outputs(args)
            photo = read_image(args.photo)
            model = load(args.model, args.device)
            out = inpaint_photo(model, photo, args.mask)
            write_image(out["result"], dst)
            if hidden:
                write_image(out["hidden"], hidden)
            print(f"inpainted {out['faces']} face(s) with {model.path} → {dst}" + (f" (hidden region: {hidden})" if hidden else ""))
        else:
            if args.batch_size < 1:
                raise FacefillError(f"--batch-size {args.batch_size}: give a number of frames >= 1.")
            src, dst, is_video = check_upscale_output(args)
            image = None if is_video else read_image(src)
            model = load(args.model, args.device)
            if model.purpose != "upscale":
                raise FacefillError(f"{model.path} is {PURPOSE_WORDS.get(model.purpose, model.purpose)} model "
                                    f"({model.meta.get('task')}); `upscale` needs a super-resolution model (e.g. models/05_srgan_faces/...).")
            if is_video:
                info = upscale_video(model, src, dst, args.batch_size)
                print(f"upscaled {info['frames']} frames {info['lr_size']} → {info['out_size']} with {model.path} → {dst}")
            else:
                out = _upscale_image(model, image)
                write_image(out, dst)
                print(f"upscaled {image.shape[1]}×{image.shape[0]} → {out.shape[1]}×{out.shape[0]} with {model.path} → {dst}")
    except FacefillError as e:
        print(f"facefill: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        left = f"; {dst} was not written" if dst is not None and not Path(dst).exists() else ""
        print(f"facefill: interrupted (Ctrl-C){left}; your input files are untouched.", file=sys.stderr)
        return 130
    except OSError as e:
        print(f"facefill: error: {os_error(e, 'use', e.filename or dst or 'a file')}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
