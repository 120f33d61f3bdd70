"""The README's before/after figure of `facefill inpaint`, from the default-profile model of stage 00.

    python scripts/make_cli_figure.py [--model models/00_context_encoder/seed0] [-o reports/cli/inpaint_example.png]
                                      [--sr-model models/05_srgan_faces/celeba_64_x2/seed0/SRGAN]

The checkpoint of the default run predates the exported model.pt, so this script exports it (with
the landmark template of its training crops, the first CelebA-HQ training faces at 128 px) into
build/cli/, builds a "photo" of two CelebA-HQ *test* faces pasted at other scales and angles into a
larger canvas, runs what `facefill inpaint` runs and writes photo | hidden centre | filled.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

from facefill import api, cli
from facefill.data import load_faces


def photo_of(faces: np.ndarray, placements, shape=(300, 560)) -> np.ndarray:
    canvas = np.full((*shape, 3), (70, 90, 110), np.uint8)
    for face, (x, y, s, a) in zip(faces, placements):
        size = face.shape[0]
        m = cv2.getRotationMatrix2D((size / 2, size / 2), a, s)
        m[:, 2] += (x - size / 2, y - size / 2)
        canvas = cv2.warpAffine(np.ascontiguousarray(face), m, shape[::-1], dst=canvas, borderMode=cv2.BORDER_TRANSPARENT)
    return canvas


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/00_context_encoder/seed0")
    ap.add_argument("-o", "--output", default="reports/cli/inpaint_example.png")
    ap.add_argument("--sr-model", help="also the upscale figure from this stage-05 model, e.g. "
                                       "models/05_srgan_faces/celeba_64_x2/seed0/SRGAN")
    ap.add_argument("--sr-output", default="reports/cli/upscale_example.png")
    args = ap.parse_args()
    if args.sr_model:
        upscale_figure(args.sr_model, args.sr_output)
    exported = Path("build/cli/00_context_encoder_seed0.pt")
    exported.parent.mkdir(parents=True, exist_ok=True)
    if not exported.exists():
        model_dir = Path(args.model)
        api.export_checkpoint(model_dir, exported, load_faces("celeba-hq", 128, "train", limit=api.N_TEMPLATE))
    model = api.load(exported)
    from facefill.align import find_faces

    # the first two test faces that dlib's frontal detector finds (it misses strongly turned heads)
    faces = [f for f in load_faces("celeba-hq", 128, "test", limit=12) if len(find_faces(photo_of([f], [(280, 150, 1.6, 0)]))) == 1][:2]
    photo = photo_of(np.stack(faces), [(140, 150, 1.6, -4), (410, 145, 1.9, 6)])
    out = cli.inpaint_photo(model, photo, "centre")
    panels = [photo, out["hidden"], out["result"]]
    titles = ["photo (2 CelebA-HQ test faces)", "hidden: the model's centre hole, aligned per face", "facefill inpaint (default-profile CE)"]
    h, w = photo.shape[:2]
    sheet = Image.new("RGB", (w, 3 * (h + 22)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (p, t) in enumerate(zip(panels, titles)):
        sheet.paste(Image.fromarray(p), (0, i * (h + 22) + 22))
        draw.text((6, i * (h + 22) + 5), t, fill="black")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.output)
    print(f"{out['faces']} faces → {args.output}")


def upscale_figure(model_dir: str, output: str) -> None:
    """LR test faces (nearest-enlarged) | `facefill upscale` | the HR originals, for an SR model of stage 05."""
    model = api.load(model_dir)
    scale, hr = model.task.cfg.scale, model.task.cfg.hr_size
    faces = load_faces("celeba-hq", hr, "test", limit=4)
    lr = np.stack([np.asarray(Image.fromarray(f).resize((hr // scale, hr // scale), Image.BICUBIC)) for f in faces])
    sr = model.upscale(lr)
    rows = [np.concatenate([np.asarray(Image.fromarray(l).resize((hr, hr), Image.NEAREST)) for l in lr], 1),
            np.concatenate(list(sr), 1), np.concatenate(list(faces), 1)]
    titles = [f"input: {hr // scale} px test faces (bicubic downscale; shown enlarged)", f"facefill upscale ×{scale} ({Path(model_dir).name})",
              f"original {hr} px"]
    sheet = Image.new("RGB", (rows[0].shape[1], 3 * (hr + 22)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (r, t) in enumerate(zip(rows, titles)):
        sheet.paste(Image.fromarray(r), (0, i * (hr + 22) + 22))
        draw.text((6, i * (hr + 22) + 5), t, fill="black")
    sheet.save(output)
    print(f"→ {output}")


if __name__ == "__main__":
    main()
