"""Paper 002 study plumbing: the loss readings of Eq. (1), the mask-region error, the cached identity
distance, and the paper numbers / profile that the study YAML and params.yaml must agree on."""
import numpy as np
import pytest
import torch

from facefill import landmarks
from facefill.adversarial import Step
from facefill.config import load_params
from facefill.errors import ConfigError, DataError
from facefill.experiments import study_data
from facefill.experiments.masked_face2021 import region_mse
from facefill.models import elu_context_encoder as ece
from facefill.pipeline import notebook_parameters

TINY = {"image_size": 64, "width": 2, "max_width": 8}


@pytest.mark.parametrize("reading, factor", [("literal", 1.0), ("pixel_mean_01", 0.25), ("pixel_mean_255", 127.5**2),
                                             ("image_sum_01", 128 * 128 * 3 / 4), ("image_sum", 128 * 128 * 3)])
def test_each_reading_scales_the_per_pixel_mse(reading, factor):
    g = torch.Generator().manual_seed(0)
    out, x = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1, torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    task = ece.EluContextEncoderTask(ece.EluContextEncoderConfig(loss_reading=reading, **TINY))
    got = task.reconstruction_loss(out, Step(real=x, images=x))
    # the reading's units, computed from their definition: rescale the images, then mean or sum
    if reading == "pixel_mean_01":
        want = (((out + 1) / 2 - (x + 1) / 2) ** 2).mean()
    elif reading == "pixel_mean_255":
        want = (((out + 1) * 127.5 - (x + 1) * 127.5) ** 2).mean()
    elif reading.startswith("image_sum"):
        scale = 0.5 if reading == "image_sum_01" else 1.0
        want = ((scale * (out - x)) ** 2).mean() * 128 * 128 * 3  # a sum over the paper's 128-px image
    else:
        want = ((out - x) ** 2).mean()
    torch.testing.assert_close(got, want.float(), rtol=1e-5, atol=0)
    assert got.item() == pytest.approx(factor * ((out - x) ** 2).mean().item(), rel=1e-5)


def test_unknown_reading_is_a_clear_error():
    with pytest.raises(ConfigError, match="loss_reading"):
        ece.EluContextEncoderConfig(loss_reading="sum", **TINY)


def test_region_mse_counts_only_masked_pixels():
    truth = torch.zeros(2, 3, 4, 4)
    filled = torch.zeros(2, 3, 4, 4)
    masks = torch.zeros(2, 1, 4, 4)
    masks[:, :, :2] = 1
    filled[:, :, :2] = 0.5  # error 0.25 on every masked pixel
    filled[:, :, 2:] = 9.0  # unmasked pixels never count
    assert region_mse(filled, truth, masks) == pytest.approx(0.25)


@pytest.mark.real_data
def test_cached_identity_distances_equal_identity_distance():
    from facefill import data

    faces = data.load_faces("celeba-hq", 128, "test", 3, processed_dir="data/processed", seed=0)
    rng = np.random.default_rng(0)
    noisy = np.clip(faces.astype(int) + rng.integers(-40, 40, faces.shape), 0, 255).astype(np.uint8)
    ref = landmarks.reference_descriptors(faces)
    np.testing.assert_allclose(landmarks.identity_distances(noisy, ref), landmarks.identity_distance(noisy, faces), rtol=1e-6)
    assert np.all(landmarks.identity_distances(faces, ref) < 1e-6)  # the original is at distance 0
    assert np.all(landmarks.identity_distances(noisy, ref) > 0)
    with pytest.raises(DataError, match="reference shape"):
        landmarks.identity_distances(noisy[:2], ref)


def test_paper_profile_trains_the_papers_iterations():
    paper = study_data("masked_face2021")["training"]
    assert paper["epochs"] * paper["steps_per_epoch"] == paper["iterations"] == 14080
    values = notebook_parameters("masked_face", "paper", load_params())
    assert values["steps"] == paper["iterations"] and values["batch_size"] == paper["batch_size"]
    assert values["image_size"] == paper["image_size"]


def test_study_yaml_readings_and_claims_are_consistent():
    study = study_data("masked_face2021")
    readings = study["loss_reading"]
    assert set(readings["candidates"]) <= set(ece.LOSS_READINGS) and readings["chosen"] in readings["candidates"]
    assert readings["literal"] == "literal"
    assert load_params()["base"]["masked_face"]["loss_reading"] == readings["chosen"]  # the default trains the chosen reading
    ids = [c["id"] for c in study["claims"]]
    assert len(ids) == len(set(ids))
    assert any(c.get("a") == "BN" and c["b"] == "no BN" for c in study["claims"])  # the §3.3 ablation is a claim


def test_loss_reading_criterion_rejects_the_literal_reading():
    from facefill.experiments.masked_face2021 import MaskedFaceStudy

    study = MaskedFaceStudy.__new__(MaskedFaceStudy)  # only what readings() reads
    study.paper, study.val_mean_full = study_data("masked_face2021"), 0.3
    table = study.readings().set_index("reading")
    # 1:1 the paper's 70 would need a per-pixel MSE of ~65-69 on [-1, 1], above the maximum 4
    assert not table.loc["literal", "admissible"] and not table.loc["pixel_mean_01", "admissible"]
    assert table.loc["pixel_mean_255", "admissible"] and table.loc["pixel_mean_255", "chosen"]
    assert table.loc["pixel_mean_255", "(high)"] == pytest.approx((70 - 0.7) / 127.5**2)
    assert table["chosen"].sum() == 1
    study.val_mean_full = 1e-4  # a validation set no reading can explain: nothing is chosen
    assert not study.readings()["chosen"].any()


# --------------------------------------------------------------------------- budget stability (half-budget runs)

@pytest.mark.slow
def test_study_scores_half_budget_twins_of_the_claimed_arms(tmp_path, monkeypatch):
    """With half budget on, no BN and BN (the arms of the claims) also train at half their steps, scored like the
    full runs under their half-budget name and given to every claim as half_arrays; the diagnostic (in no claim)
    trains none; figures and the summary's baselines leave the half-budget models out."""
    from types import SimpleNamespace

    from facefill import verdicts
    from facefill.config import notebook_parameters
    from facefill.experiments import masked_face2021 as mf
    from facefill.experiments.study import half_name
    from facefill.reporting import Run
    from facefill.train import HALF_DIR, load_checkpoint

    def fake_faces(dataset, size, split, n, **kw):
        return np.random.default_rng({"train": 1, "val": 2, "test": 3}[split]).integers(0, 256, (n, size, size, 3), dtype=np.uint8)

    monkeypatch.setattr(mf.data, "load_faces", fake_faces)
    monkeypatch.setattr(mf, "masks_for", lambda faces, seed, cfg: SimpleNamespace(masks=ece.template_masks(faces.shape[1], len(faces)),
                                                                              clipped=np.zeros(len(faces), bool)))
    p = notebook_parameters("masked_face", "smoke") | {
        "output_dir": str(tmp_path / "out"), "checkpoint_dir": str(tmp_path / "ckpt"), "n_train": 8, "n_val": 4, "n_test": 4,
        "n_seeds": 2, "width": 2, "max_width": 8, "steps": 4, "batch_size": 4, "precision": "fp32", "channels_last": False, "device": "cpu"}
    run = Run("03_masked_face_inpainting", p, tmp_path, tmp_path / "out", tmp_path / "ckpt", torch.device("cpu"))
    study = mf.MaskedFaceStudy(p, run)
    study.half_budget = True  # whatever params.yaml's verdicts say
    study.load()
    study.train()
    for r in study.runs:
        half_ckpt = tmp_path / "ckpt" / f"{r.arm.replace(' ', '_').replace(',', '')}_seed{r.seed}" / HALF_DIR / "last.pt"
        if r.arm in mf.DIAGNOSTICS:
            assert r.half is None and not half_ckpt.exists()
            continue
        assert load_checkpoint(half_ckpt)["step"] == p["steps"] // 2
        full, half = r.task.generator.state_dict(), r.half.generator.state_dict()
        assert any(not torch.equal(full[k], half[k]) for k in full)
    table = study.evaluate()
    assert {half_name(a) for a in mf.ARMS} <= set(table["method"]) and half_name(mf.DIAGNOSTIC) not in set(table["method"])
    assert not any(m.endswith("(half budget)") for m, _ in study.filled)
    specs = study.claim_specs()
    assert any(s["a"]["label"] == "BN" and s["b"]["label"] == "no BN" for s in specs)  # the BN claim: two trained arms
    for s in specs:
        for arm in ("a", "b"):
            x = s[arm]
            if not x["trained"]:
                assert "half_arrays" not in x
                continue
            assert len(x["half_arrays"]) == len(x["arrays"]) == len(study.seeds)
            for full, half in zip(x["arrays"], x["half_arrays"]):
                assert full != half and "(half_budget)" in half
                fa, ha = (study.store.arrays[ref.rsplit(":", 1)[1]] for ref in (full, half))
                assert fa.shape == ha.shape and not np.array_equal(fa, ha)
    records = verdicts.evaluate_claims(specs, verdicts.Tolerances.from_params(), root=tmp_path)
    assert all("half_verdict" in r["result"] for r in records)
    (auc,) = [r for r in records if r["metric"] == "val_auc"]  # one number per seed: decided on the seeds alone
    assert auc["result"]["n_images"] == 1 and auc["result"]["n_seeds_a"] == len(study.seeds)
    assert {mf.ADVERSARIAL, mf.DIAGNOSTIC} <= set(table["method"])
    assert "(half budget)" not in study.summary(table, study.ablation(), records)  # never a baseline the model is held against
    study.half_budget = False  # no half runs: the arms carry no half arrays (and none are looked up)
    assert all("half_arrays" not in s[arm] for s in study.claim_specs() for arm in ("a", "b"))


def test_curve_area_is_the_mean_validation_error_over_the_run():
    import pandas as pd

    from facefill.experiments.masked_face2021 import curve_area

    h = pd.DataFrame({"step": [0, 5, 10, 20, 30, 40], "val_rec": [np.nan, 1.0, np.nan, 0.5, 0.5, 0.25]})  # logged rows
    # trapezoids over steps 5-40: (1 + .5)/2 * 15 + .5 * 10 + (.5 + .25)/2 * 10 = 11.25 + 5 + 3.75 = 20 over 35 steps
    assert curve_area(h) == pytest.approx(20 / 35)
    faster = h.assign(val_rec=h["val_rec"] * 0.5)
    assert curve_area(faster) < curve_area(h)


def test_a_mask_never_covers_the_eyes():
    """A head tilted down (a short nose between eyes and mouth) lifts the nose-bridge top edge over the eyes:
    the mask is cut at the lower-eyelid line, the cut counted; an upright face's mask is left as drawn."""
    from facefill import face_masks as fm

    size = 64
    faces = np.zeros((2, size, size, 3), np.uint8)
    upright = fm.template_landmarks(size, size)
    bowed = upright.copy()
    bowed[27:36, 1] = upright[27:36, 1] - 0.6 * (upright[27:36, 1] - upright[39, 1])  # the nose shortened towards the eyes
    bowed[36:48, 1] += 2.5  # the eyes a little lower in the frame
    cfg = fm.FaceMaskConfig(shapes=("cloth",))

    def drawn(i, p):  # what face_masks draws for image i before the cut: the same random stream
        rng = np.random.Generator(np.random.PCG64([7, i]))
        rng.integers(1)  # the shape draw
        return fm.rasterize(fm.mask_polygon(p, "cloth", rng, cfg), size, size)

    naive = [drawn(0, upright), drawn(1, bowed)]
    got = fm.face_masks(faces, 7, cfg, points=np.stack([upright, bowed]))
    assert fm.covers_eyes(torch.from_numpy(np.stack(naive))[:, None], np.stack([upright, bowed])).tolist() == [False, True]
    assert got.clipped.tolist() == [False, True] and not fm.covers_eyes(got.masks, got.points).any()
    assert np.array_equal(got.masks[0, 0].numpy(), naive[0])
    cut = got.masks[1, 0].numpy()
    assert cut.sum() > 0.5 * naive[1].sum() and (cut <= naive[1]).all()  # only pixels above the eye line go
