"""Budget stability's training side: fit(half_budget=True) also trains the run at half the steps, branched off it."""
import numpy as np
import torch

from facefill.models.context_encoder import ContextEncoderConfig, ContextEncoderTask
from facefill.train import HALF_DIR, TrainConfig, fit, half_branch_step, half_config, load_modules


def _images(n=24, size=32):
    return np.random.default_rng(0).integers(0, 255, (n, size, size, 3), np.uint8)


def _task():
    torch.manual_seed(0)  # the weights are drawn when the task is built, before fit seeds the run
    return ContextEncoderTask(ContextEncoderConfig(image_size=32, hole=16, overlap=0, bottleneck=8, width=4))


def _weights(task):
    return {f"{k}.{n}": t.detach().clone() for k, m in task.modules.items() for n, t in m.state_dict().items()}


def _cfg(**kw):
    return TrainConfig(**{"steps": 8, "batch_size": 4, "precision": "fp32", "device": "cpu", "progress": False,
                          "checkpoint_every": 3, "lr_decay_start": 0.5, **kw})


def test_the_half_run_equals_an_independent_run_of_half_the_steps(tmp_path):
    images, cfg = _images(), _cfg(half_budget=True)
    assert half_config(cfg).steps == 4 and half_branch_step(cfg) == 2
    task = _task()
    hist = fit(task, images, cfg, tmp_path / "out", tmp_path / "ckpt")
    full = _weights(task)
    assert len(hist) and len(hist.attrs["half_history"])
    assert (tmp_path / "ckpt" / HALF_DIR / "model.pt").is_file() and (tmp_path / "out" / HALF_DIR / "history.csv").is_file()

    alone = _task()  # the same run, 4 steps, from scratch
    fit(alone, images, _cfg(steps=4), tmp_path / "out4", tmp_path / "ckpt4")
    branched = _task()
    assert load_modules(branched, tmp_path / "ckpt" / HALF_DIR / "last.pt") == 4
    for k, v in _weights(alone).items():
        assert torch.equal(v, _weights(branched)[k]), k
    ref = _task()  # and the task holds the full run when fit returns
    fit(ref, images, _cfg(), tmp_path / "out8", tmp_path / "ckpt8")
    for k, v in _weights(ref).items():
        assert torch.equal(v, full[k]), k


def test_a_finished_pair_is_not_retrained_and_a_lost_half_run_is_redone(tmp_path, capsys):
    images, cfg = _images(), _cfg(half_budget=True)
    fit(_task(), images, cfg, tmp_path / "out", tmp_path / "ckpt")
    capsys.readouterr()
    fit(_task(), images, cfg, tmp_path / "out", tmp_path / "ckpt")
    err = capsys.readouterr().out
    assert "resuming from" in err and "at step 8/8" in err and "at step 4/4" in err
    (tmp_path / "ckpt" / HALF_DIR / "last.pt").unlink()
    (tmp_path / "ckpt" / HALF_DIR / "model.pt").unlink()
    fit(_task(), images, cfg, tmp_path / "out", tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / HALF_DIR / "model.pt").is_file()
