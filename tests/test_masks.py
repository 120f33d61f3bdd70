"""Tests for `facefill.masks`: shapes, determinism, coverage, filling and checks."""

import hashlib
import subprocess
import sys

import pytest
import torch

from facefill.errors import ConfigError, MaskError
from facefill.masks import (
    IMAGENET_MEAN_RGB,
    MASK_KINDS,
    apply_mask,
    center_mask,
    check_masks,
    half_mask,
    hole_bbox,
    make_masks,
    random_block_masks,
    random_pixel_masks,
    random_region_masks,
    stroke_masks,
)

SIZE = 64
N = 8
RANDOM_KINDS = ["random_region", "random_blocks", "strokes_thin", "strokes_medium", "strokes_thick", "random_pixels"]


def digest(masks: torch.Tensor) -> str:
    return hashlib.sha256(masks.numpy().tobytes()).hexdigest()


def areas(masks: torch.Tensor) -> torch.Tensor:
    return masks.flatten(1).mean(1)


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_every_kind_follows_the_convention(kind):
    masks = make_masks(kind, SIZE, N, seed=3)
    assert masks.shape == (N, 1, SIZE, SIZE)
    assert masks.dtype == torch.float32
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    check_masks(masks)  # every mask has a hole and some context


@pytest.mark.parametrize("kind", RANDOM_KINDS)
def test_seeded_determinism(kind):
    a = make_masks(kind, SIZE, N, seed=1)
    torch.manual_seed(123)  # global state must not matter
    b = make_masks(kind, SIZE, N, seed=1)
    c = make_masks(kind, SIZE, N, seed=2)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not all(torch.equal(a[0], a[i]) for i in range(1, N)), "masks of one call should differ"


def test_determinism_across_processes():
    code = (
        "import hashlib; from facefill.masks import make_masks, MASK_KINDS\n"
        "for k in MASK_KINDS:\n"
        "    print(hashlib.sha256(make_masks(k, 64, 8, seed=1).numpy().tobytes()).hexdigest())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [digest(make_masks(k, SIZE, N, seed=1)) for k in MASK_KINDS]


def test_center_mask_exact():
    m = center_mask(128, 64, n=2)
    assert m.sum().item() == 2 * 64 * 64
    assert m[0, 0, 32:96, 32:96].eq(1).all() and m[0, 0].sum() == 64 * 64
    assert hole_bbox(m[0, 0]) == (32, 32, 64, 64)
    m = center_mask(250, 64)  # paper 001: odd leftover goes to the bottom/right
    assert hole_bbox(m[0, 0]) == (93, 93, 64, 64)
    assert torch.equal(make_masks("center", 128, 1), center_mask(128, 64))
    assert make_masks("center", 128, 1, hole=32).sum() == 32 * 32
    with pytest.raises(ConfigError):
        center_mask(64, 64)


def test_half_masks():
    left, right = half_mask(8, "left"), half_mask(8, "right")
    assert left[0, 0, :, :4].eq(1).all() and left[0, 0, :, 4:].eq(0).all()
    assert torch.equal(left + right, torch.ones_like(left))
    assert torch.equal(make_masks("right", 8, 2), half_mask(8, "right", n=2))
    assert half_mask(7, "left")[0, 0, 0].tolist() == [1, 1, 1, 1, 0, 0, 0]
    with pytest.raises(ConfigError, match="left"):
        half_mask(8, "top")


def test_random_region_area_in_range():
    for size in (64, 128):
        a = areas(random_region_masks(size, 32, seed=0))
        assert (a >= 0.20).all() and (a <= 0.30).all()
    a = areas(random_region_masks(64, 16, seed=0, min_area=0.1, max_area=0.15))
    assert (a >= 0.10).all() and (a <= 0.15).all()


def test_random_region_masks_are_blobs_not_noise():
    m = random_region_masks(128, 4, seed=0)
    # neighbouring pixels agree almost always for smooth blobs (~80 % hole/known flips for noise)
    flips = (m[..., 1:] != m[..., :-1]).float().mean()
    assert flips < 0.05


def test_random_blocks_total_area():
    m = random_block_masks(128, 64, seed=0)
    a = areas(m)
    assert (a > 0).all() and (a <= 0.25).all()
    m = random_block_masks(64, 16, seed=0, max_fraction=0.1, min_block=4, max_block=16)
    assert (areas(m) <= 0.1).all()
    with pytest.raises(ConfigError, match="min_block"):
        random_block_masks(64, 1, seed=0, max_fraction=0.01, min_block=20)


@pytest.mark.parametrize("width", ["thin", "medium", "thick"])
def test_strokes_non_empty(width):
    a = areas(stroke_masks(128, 16, seed=0, width=width))
    assert (a > 0).all() and (a <= 0.7).all()


def test_stroke_widths_are_ordered():
    mean_area = {w: areas(stroke_masks(128, 32, seed=0, width=w)).mean() for w in ("thin", "medium", "thick")}
    assert mean_area["thin"] < mean_area["thick"]
    with pytest.raises(ConfigError, match="thin"):
        stroke_masks(64, 1, seed=0, width="huge")


def test_random_pixels_fraction():
    m = random_pixel_masks(128, 4, seed=0)
    assert abs(m.mean().item() - 0.8) < 0.01
    assert abs(random_pixel_masks(128, 2, seed=0, drop=0.5).mean().item() - 0.5) < 0.01


def test_apply_mask_fills_only_the_hole():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    masks = center_mask(16, 8, n=2)
    hole = masks.bool().expand_as(images)

    out = apply_mask(images, masks)
    assert torch.equal(out[~hole], images[~hole])
    for c in range(3):
        assert torch.all(out[:, c][masks[:, 0].bool()] == torch.tensor(IMAGENET_MEAN_RGB[c]))

    out = apply_mask(images, masks, fill="mean", mean_color=(0.1, 0.2, 0.3))
    assert torch.allclose(out[:, 2][masks[:, 0].bool()], torch.tensor(0.3))

    out = apply_mask(images, masks, fill="zero")
    assert torch.equal(out[~hole], images[~hole]) and out[hole].eq(0).all()

    a = apply_mask(images, masks, fill="noise", generator=torch.Generator().manual_seed(5))
    b = apply_mask(images, masks, fill="noise", generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and torch.equal(a[~hole], images[~hole])
    assert a[hole].min() >= -1 and a[hole].max() <= 1 and a[hole].std() > 0.4


def test_apply_mask_broadcasts_a_single_mask():
    images = torch.zeros(4, 3, 8, 8)
    out = apply_mask(images, half_mask(8, "left"), fill="mean", mean_color=(1.0, 1.0, 1.0))
    assert out[:, :, :, :4].eq(1).all() and out[:, :, :, 4:].eq(0).all()
    with pytest.raises(ConfigError, match="fill"):
        apply_mask(images, half_mask(8, "left"), fill="blur")


def test_check_masks_errors():
    images = torch.zeros(2, 3, 8, 8)
    masks = center_mask(8, 4, n=2)
    check_masks(masks, images)

    no_hole = masks.clone()
    no_hole[1] = 0
    with pytest.raises(MaskError, match=r"\[1\].*no hole"):
        check_masks(no_hole)

    with pytest.raises(MaskError, match="no known pixel"):
        check_masks(torch.ones(1, 1, 8, 8))

    soft = masks.clone()
    soft[0, 0, 0, 0] = 0.5
    with pytest.raises(MaskError, match="mask 0 has values other than 0 and 1"):
        check_masks(soft)

    with pytest.raises(MaskError, match=r"\(N, 1, H, W\)"):
        check_masks(masks[:, 0])
    with pytest.raises(MaskError, match="differs from image size"):
        check_masks(center_mask(16, 4, n=2), images)
    with pytest.raises(MaskError, match="3 masks for 2 images"):
        check_masks(center_mask(8, 4, n=3), images)


def test_hole_bbox():
    m = torch.zeros(10, 12)
    m[2:5, 3:9] = 1
    m[7, 4] = 1
    assert hole_bbox(m) == (2, 3, 6, 6)
    assert hole_bbox(m[None, None]) == (2, 3, 6, 6)
    with pytest.raises(MaskError, match="no hole"):
        hole_bbox(torch.zeros(4, 4))


def test_make_masks_errors():
    with pytest.raises(ConfigError, match="unknown mask kind 'square'.*random_region"):
        make_masks("square", 64, 1)
    with pytest.raises(ConfigError, match="does not take radius.*hole"):
        make_masks("center", 64, 1, radius=3)
    with pytest.raises(ConfigError, match="drop"):
        make_masks("random_pixels", 64, 1, dropout=0.5)
    assert make_masks("random_pixels", 64, 2, seed=0, drop=0.5).mean() < 0.6
