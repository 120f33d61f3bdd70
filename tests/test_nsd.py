"""NSD (paper 001, Definitions 3.1-3.2): estimator identities, the paper's two limits, standardisation."""
import numpy as np
import pytest
import torch

from facefill import nsd
from facefill.errors import ConfigError


def test_centroid_form_equals_pairwise_form():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(5, 7, 13, generator=g) * 3 + 1
    np.testing.assert_allclose(nsd.nsd_per_image(z), nsd.pairwise_nsd_per_image(z), rtol=1e-12)


def test_hand_computed_value():
    # one image, two masks, D = 2: latents (0, 0) and (2, 0): centroid (1, 0), distances 1 and 1
    z = torch.tensor([[[0.0, 0.0], [2.0, 0.0]]])
    # NSD = (1 + 1) / (D n) = 2 / 4
    assert nsd.nsd_per_image(z)[0] == pytest.approx(0.5)
    np.testing.assert_allclose(nsd.normalised_distances(z[0]), [0.5, 0.5])
    # the U-statistic version: (1/(2 n (n-1) D)) sum_{i != j} ||x_i - x_j||^2 = 2*4 / (2*2*1*2) = 1
    assert nsd.nsd_per_image(z, unbiased=True)[0] == pytest.approx(1.0)


def test_identical_latents_give_zero():
    z = torch.randn(1, 1, 50).repeat(4, 10, 1)
    r = nsd.nsd(z)
    assert r.mean == pytest.approx(0.0, abs=1e-12) and r.std == pytest.approx(0.0, abs=1e-12)


def test_independent_standard_normal_latents_give_one():
    g = torch.Generator().manual_seed(1)
    k, n, d = 40, 100, 400
    z = torch.randn(k, n, d, generator=g)
    r = nsd.nsd(z)
    # V-statistic: E = (n-1)/n exactly; sd of the mean over k*n*d chi^2 terms is tiny
    assert r.mean == pytest.approx((n - 1) / n, abs=0.01)
    assert nsd.nsd(z, unbiased=True).mean == pytest.approx(1.0, abs=0.01)


def test_raw_scale_breaks_the_random_limit_and_standardising_restores_it():
    g = torch.Generator().manual_seed(2)
    k, n, d = 30, 50, 200
    scale = torch.linspace(0.1, 3.0, d)
    z = torch.randn(k, n, d, generator=g) * scale + 5.0  # independent of the image, but not N(0, I)
    raw = nsd.nsd(z, unbiased=True).mean
    assert raw == pytest.approx(float((scale**2).mean()), rel=0.03)  # mean per-dimension variance, not 1
    zs, dropped = nsd.standardise(z)
    assert dropped == 0
    assert nsd.nsd(zs, unbiased=True).mean == pytest.approx(1.0, abs=0.03)


def test_standardised_nsd_is_one_minus_between_image_share():
    g = torch.Generator().manual_seed(3)
    image_part = torch.randn(20, 1, 30, generator=g) * 2.0
    z = image_part + 0.5 * torch.randn(20, 8, 30, generator=g)
    zs, _ = nsd.standardise(z)
    flat = zs.reshape(-1, 30)
    between = zs.mean(1).pow(2).mean(0)  # per-dim variance of the image centroids (grand mean is 0)
    assert flat.var(0, unbiased=False).numpy() == pytest.approx(np.ones(30))
    assert nsd.nsd(zs).mean == pytest.approx(float(1 - between.mean()), rel=1e-10)
    assert 0.0 <= nsd.nsd(zs).mean <= 1.0


def test_constant_dimensions_are_dropped():
    z = torch.randn(3, 4, 5)
    z[..., 2] = 7.0
    zs, dropped = nsd.standardise(z)
    assert dropped == 1 and zs.shape == (3, 4, 4)


def test_collect_latents_pairs_every_image_with_every_mask():
    images = torch.arange(3.0).view(3, 1, 1, 1).expand(3, 3, 4, 4)
    masks = torch.arange(5.0).view(5, 1, 1, 1).expand(5, 1, 4, 4)
    z = nsd.collect_latents(lambda x, m: torch.stack([x[:, 0, 0, 0], m[:, 0, 0, 0]], 1), images, masks, batch_size=4)
    assert z.shape == (3, 5, 2)
    assert torch.equal(z[..., 0], torch.arange(3.0).view(3, 1).expand(3, 5))
    assert torch.equal(z[..., 1], torch.arange(5.0).view(1, 5).expand(3, 5))


@pytest.mark.parametrize("bad", [torch.zeros(4, 10), torch.zeros(2, 1, 5), torch.full((2, 3, 4), float("nan"))])
def test_bad_latents_are_clear_errors(bad):
    with pytest.raises(ConfigError):
        nsd.nsd(bad)
