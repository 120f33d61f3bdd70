"""The face-DCGAN stage (paper 003's prior): the face-share measure, training with its curve and
snapshots, loading by notebook 04, the stage's params and dvc entry."""
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from facefill import config
from facefill.errors import ConfigError
from facefill.experiments import dcgan_faces

ROOT = Path(__file__).resolve().parents[1]


def _faces(n: int = 8) -> np.ndarray:
    """Real 64-px CelebA test crops when the processed cache is there, else skip."""
    try:
        from facefill import data

        return data.load_faces("celeba", 64, "test", n, processed_dir=ROOT / "data" / "processed")
    except Exception as e:  # no data in this checkout
        pytest.skip(f"no CelebA cache: {e}")


def test_face_detector_share_separates_faces_from_noise():
    pytest.importorskip("dlib")
    faces = _faces(16)
    noise = np.random.default_rng(0).integers(0, 256, faces.shape, dtype=np.uint8)
    real, fake = dcgan_faces.face_detected(faces, 4.0), dcgan_faces.face_detected(noise, 4.0)
    assert real.shape == (16,) and set(np.unique(real)) <= {0.0, 1.0}
    assert real.mean() >= 0.5 and fake.mean() == 0.0
    assert dcgan_faces.face_detected(faces, 1.0).mean() < real.mean()  # 64 px is too small for the HOG detector


def _params(**over):
    p = {**dcgan_faces.stage_params("smoke", config.load_params(ROOT / "params.yaml")), "n_train": 32, "steps": 4,
         "batch_size": 8, "validate_every": 2, "face_samples": 4, "n_real": 4, "checkpoint_every": 2, "log_every": 1}
    return {**p, **over}


def test_train_writes_curve_snapshots_report_and_notebook_loads_it(tmp_path):
    pytest.importorskip("dlib")
    _faces(1)
    p = _params()
    run = dcgan_faces.train(p, tmp_path / "out", tmp_path / "ckpt", processed_dir=ROOT / "data" / "processed", progress=False)
    h = run.history.dropna(subset=["val_face_share"])
    assert list(h["step"]) == [2, 4]
    assert sorted(run.snapshots) == [2, 4] and run.snapshots[4].shape == (4, 64, 64, 3)
    for f in ("history.csv", "samples_over_training.png", "metrics.json"):
        assert (tmp_path / "out" / f).is_file()
    # the notebook loads the finished checkpoint: same weights, nothing trained, nothing written beside it
    before = sorted(p_.name for p_ in (tmp_path / "ckpt").iterdir())
    loaded = dcgan_faces.load_or_train(p, tmp_path / "ckpt", tmp_path / "own", tmp_path / "nb", processed_dir=ROOT / "data" / "processed")
    assert not loaded.trained_here and sorted(p_.name for p_ in (tmp_path / "ckpt").iterdir()) == before
    z = torch.rand(2, p["z_dim"]) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded.task.generator.eval()(z), run.task.generator.eval()(z))
    assert sorted(loaded.snapshots) == [2, 4] and (tmp_path / "nb" / "history.csv").is_file()
    # another configuration: trained into the notebook's own folder, the stage's checkpoint untouched
    other = dcgan_faces.load_or_train({**p, "width": 8}, tmp_path / "ckpt", tmp_path / "own", tmp_path / "nb2",
                                      processed_dir=ROOT / "data" / "processed")
    assert other.trained_here and (tmp_path / "own" / "last.pt").is_file()
    assert sorted(p_.name for p_ in (tmp_path / "ckpt").iterdir()) == before


def test_a_new_configuration_in_the_same_folder_keeps_only_its_own_snapshots(tmp_path):
    """Snapshots are keyed by step: those of a previous configuration must not enter the new run's figure."""
    pytest.importorskip("dlib")
    _faces(1)
    first = dcgan_faces.train(_params(validate_every=1), tmp_path / "out", tmp_path / "ckpt",
                              processed_dir=ROOT / "data" / "processed", progress=False)
    assert sorted(first.snapshots) == [1, 2, 3, 4]
    second = dcgan_faces.train(_params(lr_decay_start=1.0), tmp_path / "out2", tmp_path / "ckpt",
                               processed_dir=ROOT / "data" / "processed", progress=False)
    assert second.trained_here and sorted(second.snapshots) == [2, 4]
    assert sorted(np.load(tmp_path / "ckpt" / dcgan_faces.SNAPSHOTS).files) == ["2", "4"]
    assert list((tmp_path / "ckpt").glob("stale-*.pt"))  # the first run's checkpoint is moved aside, not lost


def test_unknown_stage_keys_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="widht"):
        dcgan_faces.train({**_params(), "widht": 3}, tmp_path / "o", tmp_path / "c")


def test_stage_in_params_and_dvc():
    params = config.load_params(ROOT / "params.yaml")
    for profile in config.PROFILES:
        p = dcgan_faces.stage_params(profile, params)
        dcgan_faces._configs(p)  # every profile builds valid configs
    assert dcgan_faces.stage_params("paper", params)["g_activation"] == "leaky_relu"
    assert dcgan_faces.stage_params("paper", params)["lr_decay_start"] == 1.0  # Radford's constant lr
    assert dcgan_faces.stage_params("default", params)["lr_decay_start"] < 1.0  # settles for the gate (deviation log)
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["dcgan"]
    assert stage["cmd"] == "python -m facefill.experiments.dcgan_faces train"
    for dep in ("facefill/experiments/dcgan_faces.py", "facefill/models/dcgan.py", "facefill/train.py", "facefill/landmarks.py",
                "data/processed/celeba__default__64.npy"):
        assert dep in stage["deps"], dep
    outs = [next(iter(o)) for o in stage["outs"]]
    assert outs == [f"reports/{dcgan_faces.STAGE}", f"models/{dcgan_faces.STAGE}"]
    semantic = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["semantic"]
    assert f"models/{dcgan_faces.STAGE}" in semantic["deps"] and "base.dcgan" in semantic["params"]
    assert config.section(params, "semantic", "default")["dcgan_dir"] == f"models/{dcgan_faces.STAGE}"
