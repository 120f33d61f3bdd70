"""The DCGAN quality measure: a kernel distance on offline EfficientNet-Lite0 features ranks fakes that a
face-share does not tell apart, against the real-vs-real floor."""
import numpy as np
import pytest
from scipy import ndimage

from facefill.metrics import kernel_distance
from facefill.perceptual import image_features

pytestmark = pytest.mark.real_data


def test_kernel_distance_ranks_worse_fakes_higher():
    from facefill.data import load_faces

    real = load_faces("celeba", 64, "test", 120)
    a, b = real[:60], real[60:]
    blurred = np.stack([ndimage.gaussian_filter(im.astype(float), (1.5, 1.5, 0)) for im in b]).round().astype(np.uint8)
    noise = np.random.default_rng(0).integers(0, 255, b.shape, np.uint8)
    fa, fb, fblur, fnoise = (image_features(x) for x in (a, b, blurred, noise))
    floor, blur, junk = kernel_distance(fa, fb), kernel_distance(fa, fblur), kernel_distance(fa, fnoise)
    assert abs(floor) < blur < junk, (floor, blur, junk)  # real-vs-real ≈ 0 < blurred faces < noise


def test_kernel_distance_is_unbiased_and_checks_shapes():
    rng = np.random.default_rng(1)
    same = [kernel_distance(rng.standard_normal((50, 8)), rng.standard_normal((50, 8))) for _ in range(40)]
    assert abs(np.mean(same)) < 3 * np.std(same) / np.sqrt(len(same))  # mean 0 over draws of one distribution
    assert kernel_distance(rng.standard_normal((50, 8)), 1 + rng.standard_normal((50, 8))) > 0.1
    with pytest.raises(Exception, match="feature sets"):
        kernel_distance(np.zeros((1, 8)), np.zeros((5, 8)))
