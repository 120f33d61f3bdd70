"""The training loop: determinism, exact kill-and-resume, NaN guard, checkpoints, batch order."""
import numpy as np
import pandas as pd
import pytest
import torch

from tiny_training import generator_weights, train_config

from facefill.runtime import set_seed
from facefill.errors import ConfigError, TrainingDivergedError
from facefill.models import context_encoder as ce
from facefill.train import BatchOrder, TrainConfig, fit, load_checkpoint


def tiny_task():
    set_seed(0)  # weights are drawn at construction: seed first, as reporting.start does in the notebooks
    return ce.ContextEncoderTask(ce.ContextEncoderConfig(image_size=64, hole=32, width=4, bottleneck=16))


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(24, 64, 64, 3), dtype=np.uint8)


cfg, weights = train_config, generator_weights


class Interrupt(Exception):
    pass


class DiesAfter:
    """Wraps a task and raises after ``n`` steps, like a killed process."""

    def __init__(self, task, n):
        self.task, self.n = task, n
        self.modules, self.cfg = task.modules, task.cfg

    def configure(self, device):
        self.task.configure(device)
        self.optimizers = self.task.optimizers

    def training_step(self, batch, autocast):
        if self.n == 0:
            raise Interrupt
        self.n -= 1
        return self.task.training_step(batch, autocast)

    def sample(self, batch, autocast):
        return self.task.sample(batch, autocast)


def test_same_seed_same_result(images, tmp_path):
    a, b = tiny_task(), tiny_task()
    ha = fit(a, images, cfg(), tmp_path / "a")
    hb = fit(b, images, cfg(), tmp_path / "b")
    for k, v in weights(a).items():
        torch.testing.assert_close(v, weights(b)[k], rtol=0, atol=0)
    pd.testing.assert_frame_equal(ha.drop(columns="images_per_s"), hb.drop(columns="images_per_s"))


def test_kill_and_resume_equals_uninterrupted(images, tmp_path):
    whole = tiny_task()
    fit(whole, images, cfg(), tmp_path / "whole")

    killed = tiny_task()
    with pytest.raises(Interrupt):
        fit(DiesAfter(killed, 5), images, cfg(), tmp_path / "run")  # dies in step 6; checkpoint at step 4
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 4

    resumed = tiny_task()
    hist = fit(resumed, images, cfg(), tmp_path / "run")
    for k, v in weights(whole).items():
        torch.testing.assert_close(weights(resumed)[k], v, rtol=0, atol=0)
    assert list(hist["step"]) == [1, 2, 3, 4, 5, 6]


def test_longer_run_resumes_and_other_config_starts_afresh(images, tmp_path):
    fit(tiny_task(), images, cfg(steps=4), tmp_path)
    extended = tiny_task()
    hist = fit(extended, images, cfg(steps=6), tmp_path)  # same run, more steps: resumes at 4
    assert list(hist["step"]) == [1, 2, 3, 4, 5, 6]
    fit(tiny_task(), images, cfg(seed=99), tmp_path)  # another seed: the old checkpoint is kept aside
    assert list((tmp_path / "checkpoints").glob("stale-*.pt"))


def test_nan_guard_stops_and_keeps_last_good_checkpoint(images, tmp_path):
    task = tiny_task()
    calls = {"n": 0}
    step = task.training_step

    def poisoned(batch, autocast):
        calls["n"] += 1
        logs = step(batch, autocast)
        if calls["n"] == 3:
            logs["g_rec"] = torch.tensor(float("nan"))
        return logs

    task.training_step = poisoned
    with pytest.raises(TrainingDivergedError, match="not finite.*step 2"):
        fit(task, images, cfg(), tmp_path)
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["step"] == 2


def test_batch_order_is_a_function_of_seed_and_step():
    order = BatchOrder(10, 4, seed=1)
    epoch0 = torch.cat([order(0), order(1), order(2)[:2]])
    assert sorted(epoch0.tolist()) == list(range(10))  # each image once per epoch
    assert torch.equal(BatchOrder(10, 4, seed=1)(5), order(5))
    assert not torch.equal(BatchOrder(10, 4, seed=2)(0), order(0))


def test_samples_and_history_files(images, tmp_path):
    fit(tiny_task(), images, cfg(sample_every=3), tmp_path, sample_images=images[:4])
    assert (tmp_path / "samples" / "step_000003.png").exists()
    assert (tmp_path / "samples" / "step_000006.png").exists()
    assert list(pd.read_csv(tmp_path / "history.csv").columns[:2]) == ["step", "d_real"]


def test_bad_inputs_are_clear_errors(images, tmp_path):
    with pytest.raises(ConfigError, match="uint8"):
        fit(tiny_task(), images.astype(np.float32), cfg(), tmp_path)
    with pytest.raises(ConfigError):
        TrainConfig(steps=0)
    with pytest.raises(ConfigError, match="fp16"):
        fit(tiny_task(), images, cfg(precision="fp16"), tmp_path)


# --------------------------------------------------------------------------- validation logging

def validator(task, images):
    """Held-out reconstruction L1 of the hole; draws random numbers on purpose (fit must restore the RNG)."""
    x = torch.as_tensor(images).permute(0, 3, 1, 2).float().div(127.5).sub(1)

    def validate():
        task.generator.eval()
        torch.rand(3)  # a careless callback: consumes the training RNG stream
        np.random.rand(2)
        with torch.no_grad():
            patch = task.generator(ce.drop_centre(x, task.cfg))
        return {"val_rec": float((patch - ce.crop_centre(x, task.cfg)).abs().mean())}

    return validate


def test_validation_default_gives_at_least_20_points(images, tmp_path):
    from facefill.train import default_validate_every

    assert default_validate_every(1000, 10) == 40 and default_validate_every(6, 1) == 1
    assert default_validate_every(300, 10) == 10  # 300 // 25 = 12 → 10: 30 points, not 15
    task = tiny_task()
    hist = fit(task, images, cfg(steps=50, batch_size=2, checkpoint_every=50), tmp_path, validate=validator(task, images[:4]))
    val = hist.dropna(subset=["val_rec"])
    assert len(val) >= 20 and val["step"].iloc[-1] == 50
    assert hist["val_rec"].isna().sum() == len(hist) - len(val)  # NaN in the other rows
    assert "val_rec" in pd.read_csv(tmp_path / "history.csv").columns
    assert all(m.training is False for m in task.generator.modules())  # fit ends in eval mode, as before


def test_validation_does_not_change_training(images, tmp_path):
    plain = tiny_task()
    h0 = fit(plain, images, cfg(), tmp_path / "plain")
    checked = tiny_task()
    modes = []

    def validate():
        modes.append(checked.generator.training)
        return validator(checked, images[:4])()

    h1 = fit(checked, images, cfg(), tmp_path / "val", validate=validate, validate_every=2)
    assert modes == [True, True, True]  # called at steps 2, 4, 6 in train mode; the callback's eval() was undone
    for k, v in weights(plain).items():
        torch.testing.assert_close(weights(checked)[k], v, rtol=0, atol=0)
    pd.testing.assert_frame_equal(h0.drop(columns="images_per_s"), h1.drop(columns=["images_per_s", "val_rec"]))
    assert list(h1.dropna(subset=["val_rec"])["step"]) == [2, 4, 6]


def test_validation_history_survives_resume(images, tmp_path):
    whole = tiny_task()
    hw = fit(whole, images, cfg(), tmp_path / "whole", validate=validator(whole, images[:4]), validate_every=2)

    killed = tiny_task()
    with pytest.raises(Interrupt):
        fit(DiesAfter(killed, 5), images, cfg(), tmp_path / "run", validate=validator(killed, images[:4]), validate_every=2)
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert [r["step"] for r in ckpt["history"] if "val_rec" in r] == [2, 4]

    resumed = tiny_task()
    hr = fit(resumed, images, cfg(), tmp_path / "run", validate=validator(resumed, images[:4]), validate_every=2)
    pd.testing.assert_frame_equal(hw.drop(columns="images_per_s"), hr.drop(columns="images_per_s"))


def test_validation_at_steps_without_log_row(images, tmp_path):
    task = tiny_task()
    hist = fit(task, images, cfg(log_every=4), tmp_path, validate=validator(task, images[:4]), validate_every=3)
    assert list(hist["step"]) == [3, 4, 6]  # a row of its own at step 3, merged into the log row of step 6
    assert hist.set_index("step")["val_rec"].notna().tolist() == [True, False, True]
    with pytest.raises(ConfigError, match="validate_every"):
        fit(tiny_task(), images, cfg(), tmp_path / "x", validate=lambda: {}, validate_every=0)


# --------------------------------------------------------------------------- checkpoint meta

def test_checkpoint_meta_and_old_checkpoints_load(images, tmp_path):
    import facefill
    from facefill.train import load_modules

    task = tiny_task()
    fit(task, images, cfg(), tmp_path)
    path = tmp_path / "checkpoints" / "last.pt"
    meta = load_checkpoint(path)["meta"]  # weights_only=True
    assert meta["facefill_version"] == facefill.__version__ and meta["task"] == "ContextEncoderTask"
    assert meta["config"]["width"] == 4 and meta["train_config"]["steps"] == 6
    old = torch.load(path, weights_only=True)
    del old["meta"]
    torch.save(old, path)  # a checkpoint written before meta existed
    assert load_modules(tiny_task(), path) == 6
    assert list(fit(tiny_task(), images, cfg(), tmp_path)["step"]) == [1, 2, 3, 4, 5, 6]  # still resumes (finished)


def test_lr_decay_schedule_and_exact_resume(images, tmp_path):
    c = cfg(steps=8, lr_decay_start=0.5)
    assert [c.lr_factor(s) for s in range(8)] == [1, 1, 1, 1, 1.0, 0.75, 0.5, 0.25]
    straight = tiny_task()
    fit(straight, images, c, tmp_path / "a", tmp_path / "a" / "ckpt")
    g_lr = straight.optimizers["generator"].param_groups[0]["lr"]
    assert g_lr == pytest.approx(straight.cfg.lr_d * straight.cfg.lr_g_factor * 0.25)
    resumed = DiesAfter(tiny_task(), 5)  # killed during the decay, after the checkpoint at step 4
    with pytest.raises(Interrupt):
        fit(resumed, images, c, tmp_path / "b", tmp_path / "b" / "ckpt")
    again = tiny_task()
    fit(again, images, c, tmp_path / "b", tmp_path / "b" / "ckpt")
    for k, v in weights(straight).items():
        assert torch.equal(v, weights(again)[k]), k


def test_lr_decay_start_out_of_range_is_an_error():
    with pytest.raises(ConfigError, match="lr_decay_start"):
        cfg(lr_decay_start=1.5)


def test_with_lr_decay_a_longer_run_does_not_resume_a_shorter_one():
    from facefill.train import config_fingerprint

    assert config_fingerprint(cfg(steps=6)) == config_fingerprint(cfg(steps=8))  # constant lr: extendable
    assert config_fingerprint(cfg(steps=6, lr_decay_start=0.5)) != config_fingerprint(cfg(steps=8, lr_decay_start=0.5))
