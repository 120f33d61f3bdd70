"""Learning-free baselines: known pixels untouched, the hole filled as documented."""
import numpy as np
import pytest
import torch

from facefill import baselines
from facefill.experiments import ArrayStore, deviation_table, study_data
from facefill.errors import ConfigError


def _batch(n=3, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 3, size, size, generator=g) * 2 - 1
    masks = torch.zeros(1, 1, size, size)
    masks[..., 10:22, 8:20] = 1
    return images, masks


@pytest.mark.parametrize("name", baselines.TRIVIAL + baselines.CLASSICAL)
def test_every_baseline_keeps_the_known_pixels(name):
    images, masks = _batch()
    filled = baselines.fill_all(images, masks, train_mean=torch.zeros(3, 32, 32))[name]
    known = (1 - masks).bool().expand_as(images)
    assert torch.equal(filled[known], images[known])
    assert filled.shape == images.shape and filled.abs().max() <= 1


def test_mean_colour_is_the_mean_of_the_known_pixels():
    images, masks = _batch()
    filled = baselines.mean_colour(images, masks)
    known = (1 - masks[0, 0]).bool()
    expected = images[1][:, known].mean(1)
    torch.testing.assert_close(filled[1, :, 15, 12], expected)


def test_train_mean_image_matches_numpy():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (7, 8, 8, 3), dtype=np.uint8)
    mean = baselines.train_mean_image(train, chunk=3)
    expected = torch.from_numpy(train.astype(np.float64).mean(0) / 127.5 - 1).float().permute(2, 0, 1)
    torch.testing.assert_close(mean, expected)


def test_smooth_image_is_recovered_by_the_classical_fills():
    # a linear ramp: biharmonic continues it exactly, Telea nearly; the mean colour does not
    x = torch.linspace(-0.8, 0.8, 32)
    images = x.view(1, 1, 1, 32).expand(2, 3, 32, 32).clone()
    _, masks = _batch()
    hole = masks.bool().expand_as(images)
    err = {k: float((v - images)[hole].abs().mean()) for k, v in baselines.fill_all(images, masks, torch.zeros(3, 32, 32)).items()}
    assert err["biharmonic"] < 0.01 and err["Telea"] < 0.1 < err["mean colour"]


def test_array_store_refs_round_trip(tmp_path):
    store = ArrayStore(tmp_path / "reports" / "00_x", tmp_path)
    (tmp_path / "reports" / "00_x").mkdir(parents=True)
    ref = store.put("main", "mean colour", "psnr", [1.0, 2.0])
    assert ref == "reports/00_x/arrays.npz:main__mean_colour__psnr"
    assert store.ref("main", "CE", "psnr", 3) if store.put("main", "CE", "psnr", [0.5], 3) else False
    store.save()
    with np.load(tmp_path / "reports" / "00_x" / "arrays.npz") as z:
        assert z["main__CE__seed3__psnr"].tolist() == [0.5]


def test_deviation_table_fills_this_runs_values_and_names_a_missing_one():
    rows = [{"aspect": "steps", "paper": "25 epochs", "ours": "{steps} steps", "why": "budget"}]
    assert deviation_table(rows, {"steps": 7})["ours"].tolist() == ["7 steps"]
    with pytest.raises(ConfigError, match="steps"):
        deviation_table(rows, {})


def test_study_files_have_numbers_claims_and_deviations():
    d = study_data("pathak2016")
    assert d["metrics"]["psnr"] == 18.58
    assert {c["b"] for c in d["claims"]} <= set(baselines.TRIVIAL + baselines.CLASSICAL)
    assert all({"aspect", "paper", "ours", "why"} <= set(r) for r in d["deviations"])


def test_biharmonic_solved_per_mask_equals_skimage_per_image():
    # images sharing a mask are solved as channels of one image: the same numbers as one call per image
    from skimage.restoration import inpaint_biharmonic

    from facefill.inpaint.local import biharmonic

    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 3, 24, 24, generator=g) * 2 - 1
    shared = torch.zeros(1, 1, 24, 24)
    shared[..., 6:18, 8:20] = 1
    masks = shared.repeat(5, 1, 1, 1)
    masks[3] = (torch.rand(1, 24, 24, generator=g) < 0.3).float()  # one image with its own mask, in between
    got = biharmonic(x, masks, chunk=2)  # chunks split the shared group too
    imgs = ((x + 1) / 2).permute(0, 2, 3, 1).double().numpy()
    want = np.stack([inpaint_biharmonic(im, m[0].numpy() > 0.5, channel_axis=-1) for im, m in zip(imgs, masks)])
    want = torch.from_numpy(want).float().permute(0, 3, 1, 2).mul(2).sub(1).clamp(-1, 1)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
