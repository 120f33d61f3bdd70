"""The CUDA path (runs only where a GPU is present; CI has none, scripts/device_check.sh runs it)."""
import numpy as np
import pytest
import torch

from facefill.models import context_encoder as ce
from facefill.runtime import resolve_device, resolve_precision, set_seed
from facefill.train import TrainConfig, fit, load_checkpoint

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")


def test_auto_device_and_precision_pick_cuda():
    dev = resolve_device("auto")
    assert dev.type == "cuda"
    assert resolve_precision("auto", dev) == "fp32"  # measured: bf16 does not pay for these small nets
    assert resolve_precision("bf16", dev) == "bf16"


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_fit_on_cuda_is_finite_and_resumes(tmp_path, precision):
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    images = np.random.default_rng(0).integers(0, 256, size=(32, 64, 64, 3), dtype=np.uint8)
    cfg = TrainConfig(steps=4, batch_size=8, precision=precision, device="cuda", checkpoint_every=2, log_every=1, progress=False)

    def task():
        set_seed(0)
        return ce.ContextEncoderTask(ce.ContextEncoderConfig(image_size=64, hole=32, width=16, bottleneck=64))

    whole = task()
    hist = fit(whole, images, cfg, tmp_path / "whole")
    assert np.isfinite(hist.drop(columns="step").to_numpy()).all()
    assert next(whole.generator.parameters()).is_cuda

    part = task()
    fit(part, images, TrainConfig(**{**cfg.__dict__, "steps": 2}), tmp_path / "part")
    assert load_checkpoint(tmp_path / "part" / "checkpoints" / "last.pt")["step"] == 2
    resumed = task()
    fit(resumed, images, cfg, tmp_path / "part")
    for (k, a), b in zip(whole.generator.state_dict().items(), resumed.generator.state_dict().values()):
        torch.testing.assert_close(a.float(), b.float(), rtol=1e-3, atol=1e-4, msg=k)
