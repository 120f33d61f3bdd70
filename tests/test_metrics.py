"""Tests for `facefill.metrics` against skimage, hand-computed cases and an independent MS-SSIM."""

import numpy as np
import pandas as pd
import pytest
import pytorch_msssim
import torch
from scipy.ndimage import gaussian_filter
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from facefill.errors import ConfigError, MaskError
from facefill.metrics import (
    MS_SSIM_WEIGHTS,
    bootstrap_ci,
    evaluate,
    l1,
    l2,
    ms_ssim,
    ms_ssim_scales,
    psnr,
    ssim,
    summarize,
)


def pair(n, c, h, w, *, data_range, smooth=False, noise=0.2, seed=0):
    """A target in [0, data_range] and a noisy, clipped prediction (float64 numpy, NCHW)."""
    rng = np.random.default_rng(seed)
    y = rng.random((n, c, h, w))
    if smooth:
        y = gaussian_filter(y, sigma=(0, 0, 3, 3))
        y = (y - y.min()) / (y.max() - y.min())
    x = np.clip(y + noise * rng.standard_normal(y.shape), 0, 1)
    return x * data_range, y * data_range


def to_hwc(a):
    return np.moveaxis(a, 0, -1)


def sk_ssim(x, y, data_range, full=False):
    return structural_similarity(
        to_hwc(x),
        to_hwc(y),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=data_range,
        channel_axis=-1,
        full=full,
    )


# ---------------------------------------------------------------------------
# SSIM / PSNR against skimage
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("data_range", [1.0, 2.0])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("smooth", [False, True])
@pytest.mark.parametrize("hw", [(11, 11), (32, 45), (64, 64)])
def test_ssim_matches_skimage(data_range, channels, smooth, hw):
    x, y = pair(2, channels, *hw, data_range=data_range, smooth=smooth)
    # [-1, 1] images for data_range 2: the shift must not matter
    shift = -1.0 if data_range == 2.0 else 0.0
    ours = ssim(torch.from_numpy(x + shift).float(), torch.from_numpy(y + shift).float(), data_range=data_range)
    xf, yf = x.astype(np.float32).astype(np.float64), y.astype(np.float32).astype(np.float64)
    ref = [sk_ssim(xf[i] + shift, yf[i] + shift, data_range) for i in range(2)]
    assert ours.dtype == np.float64 and ours.shape == (2,)
    np.testing.assert_allclose(ours, ref, atol=1e-4)


def test_ssim_identical_is_one_and_bf16_input():
    x, _ = pair(2, 3, 32, 32, data_range=1.0)
    t = torch.from_numpy(x).bfloat16()
    np.testing.assert_allclose(ssim(t, t, data_range=1.0), 1.0, atol=1e-12)


def test_masked_ssim_is_mean_of_full_map_over_hole():
    x, y = pair(2, 3, 40, 40, data_range=1.0, seed=1)
    mask = torch.zeros(2, 1, 40, 40)
    mask[0, 0, 10:30, 12:28] = 1
    mask[1, 0, :, :20] = 1  # touches the border: the padded map covers it
    ours = ssim(torch.from_numpy(x), torch.from_numpy(y), data_range=1.0, mask=mask)
    ref = []
    for i in range(2):
        _, full = sk_ssim(x[i], y[i], 1.0, full=True)
        ref.append(full.mean(axis=-1)[mask[i, 0].bool().numpy()].mean())
    np.testing.assert_allclose(ours, ref, atol=1e-10)


@pytest.mark.parametrize("data_range", [1.0, 2.0, 255.0])
def test_psnr_matches_skimage(data_range):
    x, y = pair(3, 3, 16, 16, data_range=data_range)
    ours = psnr(torch.from_numpy(x), torch.from_numpy(y), data_range=data_range)
    ref = [peak_signal_noise_ratio(y[i], x[i], data_range=data_range) for i in range(3)]
    np.testing.assert_allclose(ours, ref, rtol=1e-10)


def test_psnr_identical_is_capped():
    x = torch.rand(2, 3, 8, 8)
    np.testing.assert_array_equal(psnr(x, x, data_range=1.0), [100.0, 100.0])
    assert psnr(x, x, data_range=1.0, cap_db=60.0)[0] == 60.0


# ---------------------------------------------------------------------------
# L1 / L2 / regions
# ---------------------------------------------------------------------------


def test_l1_l2_hand_computed():
    y = torch.zeros(2, 1, 2, 2)
    x = torch.tensor([[[[0.5, 0.5], [0.5, 0.5]]], [[[1.0, 0.0], [0.0, 0.0]]]])
    np.testing.assert_allclose(l1(x, y, data_range=1.0), [0.5, 0.25])
    np.testing.assert_allclose(l2(x, y, data_range=1.0), [0.25, 0.25])
    # in [-1, 1] (R = 2) the same errors are half / a quarter as many percent
    np.testing.assert_allclose(l1(x, y, data_range=2.0, percent=True), [25.0, 12.5])
    np.testing.assert_allclose(l2(x, y, data_range=2.0, percent=True), [6.25, 6.25])
    np.testing.assert_allclose(l1(x, y, data_range=1.0, percent=True), [50.0, 25.0])


def test_region_metrics_hand_made():
    y = torch.zeros(1, 3, 4, 4)
    x = torch.zeros(1, 3, 4, 4)
    x[..., :2, :2] = 0.4  # the error lives only in the hole
    x[..., 3, 3] = 1.0  # outside the hole: must not count
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :] = 1  # hole = top two rows, 8 pixels; 4 of them wrong by 0.4
    np.testing.assert_allclose(l1(x, y, data_range=1.0, mask=mask), [0.2])
    np.testing.assert_allclose(l2(x, y, data_range=1.0, mask=mask), [0.08])
    np.testing.assert_allclose(psnr(x, y, data_range=1.0, mask=mask), [10 * np.log10(1 / 0.08)])
    # whole image for comparison: (4*0.4 + 1) / 16
    np.testing.assert_allclose(l1(x, y, data_range=1.0), [(4 * 0.4 + 1.0) / 16])


def test_input_errors():
    x = torch.zeros(1, 3, 16, 16)
    with pytest.raises(TypeError):
        l1(x, x)  # data_range is required
    with pytest.raises(ConfigError, match="data_range"):
        l1(x, x, data_range=0)
    with pytest.raises(MaskError, match=r"\(N, 1, H, W\)"):
        l1(x, x, data_range=1.0, mask=torch.ones(1, 16, 16))
    with pytest.raises(ConfigError, match="same shape"):
        l1(x, x[:, :1], data_range=1.0)
    with pytest.raises(MaskError, match="no pixel"):
        l1(x, x, data_range=1.0, mask=torch.zeros(1, 1, 16, 16))
    with pytest.raises(ConfigError, match="11x11"):
        ssim(x[..., :8, :8], x[..., :8, :8], data_range=1.0)


# ---------------------------------------------------------------------------
# MS-SSIM
# ---------------------------------------------------------------------------


def reference_ms_ssim(x, y, data_range, weights=MS_SSIM_WEIGHTS):
    """Independent numpy/scipy MS-SSIM of one (C, H, W) pair with even sides at every scale."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2

    def stats(a, b):
        f = lambda v: gaussian_filter(v, sigma=1.5, truncate=3.5, mode="reflect")[5:-5, 5:-5]  # noqa: E731
        ma, mb = f(a), f(b)
        va, vb, cov = f(a * a) - ma**2, f(b * b) - mb**2, f(a * b) - ma * mb
        cs = (2 * cov + c2) / (va + vb + c2)
        return ((2 * ma * mb + c1) / (ma**2 + mb**2 + c1) * cs).mean(), cs.mean()

    per_channel = []
    for a, b in zip(x, y, strict=True):
        value = 1.0
        for j, w in enumerate(weights):
            s, cs = stats(a, b)
            value *= max(s if j == len(weights) - 1 else cs, 0.0) ** w
            h, wd = a.shape
            a = a.reshape(h // 2, 2, wd // 2, 2).mean(axis=(1, 3))
            b = b.reshape(h // 2, 2, wd // 2, 2).mean(axis=(1, 3))
        per_channel.append(value)
    return float(np.mean(per_channel))


def test_ms_ssim_matches_reference_at_5_scales():
    x, y = pair(2, 3, 256, 256, data_range=2.0, smooth=True, noise=0.1)
    ours = ms_ssim(torch.from_numpy(x), torch.from_numpy(y), data_range=2.0)
    ref = [reference_ms_ssim(x[i], y[i], 2.0) for i in range(2)]
    np.testing.assert_allclose(ours, ref, rtol=1e-8)
    # and against pytorch-msssim (a project dependency), which uses the same conventions
    lib = pytorch_msssim.ms_ssim(torch.from_numpy(x), torch.from_numpy(y), data_range=2.0, size_average=False)
    np.testing.assert_allclose(ours, lib.numpy(), atol=1e-6)


def test_ms_ssim_fewer_scales_matches_renormalised_reference():
    x, y = pair(1, 1, 64, 64, data_range=1.0, smooth=True, noise=0.05)
    w = np.array(MS_SSIM_WEIGHTS[:3]) / sum(MS_SSIM_WEIGHTS[:3])
    ours = ms_ssim(torch.from_numpy(x), torch.from_numpy(y), data_range=1.0)
    np.testing.assert_allclose(ours, [reference_ms_ssim(x[0], y[0], 1.0, weights=w)], rtol=1e-8)


def test_ms_ssim_identical_and_decreasing_with_noise():
    x = torch.from_numpy(pair(1, 3, 128, 128, data_range=1.0, smooth=True)[1])
    np.testing.assert_allclose(ms_ssim(x, x, data_range=1.0), 1.0, atol=1e-12)
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(x.shape, generator=g, dtype=torch.float64)
    values = [ms_ssim(x, (x + s * noise).clamp(0, 1), data_range=1.0).mean() for s in (0.02, 0.1, 0.3)]
    assert values[0] > values[1] > values[2]


def test_ms_ssim_scales_policy():
    assert [ms_ssim_scales(s) for s in (11, 21, 64, 81, 128, 160, 161, 256)] == [1, 2, 3, 4, 4, 4, 5, 5]
    assert ms_ssim_scales((256, 64)) == 3
    x = torch.rand(1, 1, 64, 64, dtype=torch.float64)
    y = torch.rand(1, 1, 64, 64, dtype=torch.float64)
    # the default equals an explicit 3 scales
    np.testing.assert_array_equal(ms_ssim(x, y, data_range=1.0), ms_ssim(x, y, data_range=1.0, scales=3))
    with pytest.raises(ConfigError, match=r"4 scales needs the smaller image side > 80 px, got 64"):
        ms_ssim(x, y, data_range=1.0, scales=4)
    with pytest.raises(ConfigError, match="11x11"):
        ms_ssim_scales(10)
    w = [0.2, 0.3, 0.5]  # custom weights: used as given, their count sets the scales
    assert ms_ssim(x, y, data_range=1.0, weights=w)[0] != ms_ssim(x, y, data_range=1.0)[0]
    with pytest.raises(ConfigError, match="one weight per scale"):
        ms_ssim(x, y, data_range=1.0, scales=2, weights=w)


def test_ms_ssim_odd_sides_run():
    x = torch.rand(1, 3, 99, 87)
    assert 0 < ms_ssim(x, (x + 0.05).clamp(0, 1), data_range=1.0)[0] <= 1


# ---------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------


def test_bootstrap_ci_contains_mean_and_is_seeded():
    v = np.random.default_rng(0).normal(30.0, 2.0, size=200)
    lo, hi = bootstrap_ci(v, n_boot=1000, seed=1)
    assert lo < v.mean() < hi
    assert hi - lo == pytest.approx(2 * 1.96 * 2.0 / np.sqrt(200), rel=0.25)
    assert bootstrap_ci(v, n_boot=1000, seed=1) == (lo, hi)
    assert bootstrap_ci(v, n_boot=1000, seed=2) != (lo, hi)
    assert bootstrap_ci([5.0], n_boot=10) == (5.0, 5.0)


def test_summarize_columns():
    per_image = {"psnr": np.array([20.0, 22.0, 24.0]), "ssim": np.array([0.8, 0.9, 1.0])}
    df = summarize(per_image, n_boot=200)
    assert isinstance(df, pd.DataFrame)
    assert list(df.index) == ["psnr", "ssim"]
    assert list(df.columns) == ["mean", "std", "ci_low", "ci_high", "n"]
    assert df.loc["psnr", "mean"] == pytest.approx(22.0)
    assert df.loc["psnr", "std"] == pytest.approx(2.0)
    assert df.loc["ssim", "n"] == 3
    assert df.loc["ssim", "ci_low"] <= 0.9 <= df.loc["ssim", "ci_high"]


def test_evaluate():
    x, y = pair(2, 3, 32, 32, data_range=2.0)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    out = evaluate(x, y, data_range=2.0)
    assert list(out) == ["l1", "l2", "psnr", "ssim"]
    assert all(v.shape == (2,) and v.dtype == np.float64 for v in out.values())
    np.testing.assert_array_equal(out["ssim"], ssim(x, y, data_range=2.0))
    with pytest.raises(ConfigError, match="unknown metric"):
        evaluate(x, y, data_range=2.0, metrics=("fid",))
    with pytest.raises(ConfigError, match="crop"):
        evaluate(x, y, data_range=2.0, mask=torch.ones(1, 1, 32, 32), metrics=("ms_ssim",))
