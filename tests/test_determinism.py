"""Numbers that reproduce (issue 11 §5): with configure_reproducibility, two runs of a real task
give bit-identical parameters and identical loss histories (fp32, and bf16 where the CPU has AMX)."""
import numpy as np
import pandas as pd
import pytest
import torch

from facefill.errors import ConfigError
from facefill.models.context_encoder import ContextEncoderConfig, ContextEncoderTask
from facefill.runtime import configure_reproducibility, cpu_has_native_bf16, set_seed
from facefill.train import TrainConfig, fit

TIMING = ["images_per_s"]


@pytest.fixture
def reproducible(monkeypatch):
    """configure_reproducibility changes process-wide torch settings: put them back afterwards."""
    threads = torch.get_num_threads()
    det, warn_only = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    for var in ("CUBLAS_WORKSPACE_CONFIG", "FACEFILL_THREADS"):
        monkeypatch.setenv(var, "")  # records the original value (or its absence) for the undo
        monkeypatch.delenv(var)
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(det, warn_only=warn_only)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn


def run_once(images, precision, out):
    set_seed(0)
    task = ContextEncoderTask(ContextEncoderConfig(image_size=64, hole=32, width=4, bottleneck=64))
    cfg = TrainConfig(steps=6, batch_size=4, precision=precision, channels_last=True, device="cpu", seed=1,
                      log_every=1, checkpoint_every=6, progress=False)
    hist = fit(task, images, cfg, out)
    params = {f"{m}.{k}": v.detach().clone() for m, mod in task.modules.items() for k, v in mod.state_dict().items()}
    return params, hist.drop(columns=TIMING)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_two_runs_are_bit_identical(precision, tmp_path, reproducible):
    if precision == "bf16" and not cpu_has_native_bf16():
        pytest.skip("bf16 on CPU is the default only with native bf16 (AVX512-BF16 or AMX); this CPU has neither")
    env = configure_reproducibility(threads=min(2, torch.get_num_threads()))
    assert env["deterministic"] and torch.get_num_threads() == env["threads"]
    images = np.random.default_rng(0).integers(0, 256, size=(16, 64, 64, 3), dtype=np.uint8)
    pa, ha = run_once(images, precision, tmp_path / "a")
    pb, hb = run_once(images, precision, tmp_path / "b")
    assert pa.keys() == pb.keys()
    for k in pa:
        assert torch.equal(pa[k], pb[k]), k
    pd.testing.assert_frame_equal(ha, hb, check_exact=True)
    assert ha["g_rec"].notna().all() and len(ha) == 6


def test_configure_reproducibility_records_the_environment(reproducible, monkeypatch):
    import facefill

    monkeypatch.setenv("FACEFILL_THREADS", "1")
    env = configure_reproducibility()
    assert env["threads"] == 1 == torch.get_num_threads()
    assert env["facefill"] == facefill.__version__ and env["torch"] == torch.__version__ and env["numpy"] == np.__version__
    assert env["python"].count(".") == 2 and env["cpu"] and env["device_name"]
    assert env["deterministic"] is True and torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert env["cublas_workspace_config"] == ":4096:8"

    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")  # a user's choice is kept
    assert configure_reproducibility(threads=2)["cublas_workspace_config"] == ":16:8"
    assert torch.get_num_threads() == 2  # the argument wins over FACEFILL_THREADS

    monkeypatch.setenv("FACEFILL_THREADS", "many")
    with pytest.raises(ConfigError, match="FACEFILL_THREADS"):
        configure_reproducibility()
