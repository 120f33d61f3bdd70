"""``facefill`` on the command line: apply a trained model to your own photos and videos.

    facefill inpaint photo.jpg --model models/00_context_encoder [--mask centre|facemask|mask.png] -o out.png
    facefill upscale face.png  --model models/05_srgan_faces/celeba_64_x4/srresnet -o big.png
    facefill upscale clip.mp4  --model models/05_srgan_faces/celeba_64_x4/srresnet -o big.mp4

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

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
_MASK_MAKER_NAMES = {"centre": "center"}  # CLI spelling → facefill.masks spelling


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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path


def _template(model) -> np.ndarray:
    if model.landmarks is not None:
        return model.landmarks
    from .face_masks import template_landmarks
    from .train import notice

    notice(f"{model.path} stores no landmark template (a checkpoint, not an exported model.pt): aligning to the "
           "mean CelebA-HQ crop instead; rerun its stage to write model.pt for the exact framing.")
    return template_landmarks(model.image_size, model.image_size)


def check_mask_kind(model, mask: str) -> str:
    """The kind of ``mask`` (a kind name or ``custom`` for a mask image), refused when the model never saw it."""
    from .api import FREE_FORM

    kinds = model.mask_kinds
    kind = "custom" if Path(mask).suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff") else mask
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
        raise FacefillError(f"{model.path} is a {model.purpose} model ({model.meta.get('task')}), not an inpainting one; "
                            "for super-resolution use `facefill upscale`.")
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
    """Super-resolve a video frame by frame, with a progress bar (frames)."""
    from tqdm import tqdm

    from .video import super_resolve_video

    bar = tqdm(unit="frame", desc="upscale")

    def sr(frames: np.ndarray) -> np.ndarray:
        out = model.upscale(frames)
        bar.update(len(frames))
        return out

    try:
        return super_resolve_video(src, dst, sr, batch_size=batch_size, side_by_side=False)
    finally:
        bar.close()


def _default_out(src: Path, what: str) -> Path:
    return src.with_name(f"{src.stem}_{what}{src.suffix if src.suffix.lower() in VIDEO_SUFFIXES else '.png'}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="facefill", description="Apply a trained facefill model to your photos and videos.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("inpaint", help="hide a region of every face in a photo and let the model fill it")
    p.add_argument("photo")
    p.add_argument("--model", required=True, help="models/<stage>/... folder, model.pt or last.pt")
    p.add_argument("--mask", default=None, help="centre | facemask | another trained kind | mask.png (white = hide; "
                                                "the photo's size). Default: the model's first kind")
    p.add_argument("-o", "--output", default=None, help="output image (default: <photo>_inpainted.png)")
    p.add_argument("--hidden", default=None, help="also write the photo with the hidden region shown grey")
    p.add_argument("--device", default="cpu")
    u = sub.add_parser("upscale", help="super-resolve an image or a video (frame by frame)")
    u.add_argument("input")
    u.add_argument("--model", required=True, help="a super-resolution model (models/05_srgan_faces/...)")
    u.add_argument("-o", "--output", default=None, help="output image or video (default: <input>_upscaled.<ext>)")
    u.add_argument("--batch-size", type=int, default=8, help="video frames per batch")
    u.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    try:
        from .api import load

        if args.cmd == "inpaint":
            model = load(args.model, args.device)
            out = inpaint_photo(model, read_image(args.photo), args.mask)
            dst = write_image(out["result"], args.output or _default_out(Path(args.photo), "inpainted"))
            if args.hidden:
                write_image(out["hidden"], args.hidden)
            print(f"inpainted {out['faces']} face(s) → {dst}")
        else:
            model = load(args.model, args.device)
            if model.purpose != "upscale":
                raise FacefillError(f"{model.path} is a {model.purpose} model ({model.meta.get('task')}); `upscale` "
                                    "needs a super-resolution model (e.g. models/05_srgan_faces/...).")
            src = Path(args.input)
            dst = Path(args.output) if args.output else _default_out(src, "upscaled")
            if src.suffix.lower() in VIDEO_SUFFIXES:
                info = upscale_video(model, src, dst, args.batch_size)
                print(f"upscaled {info['frames']} frames {info['lr_size']} → {info['out_size']} → {dst}")
            else:
                image = read_image(src)
                out = model.upscale(image[None])[0]
                write_image(out, dst)
                print(f"upscaled {image.shape[1]}×{image.shape[0]} → {out.shape[1]}×{out.shape[0]} → {dst}")
    except FacefillError as e:
        print(f"facefill: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
