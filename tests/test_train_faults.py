"""Faults during training end in one clear message and lose nothing (issue 15, training side):
Ctrl-C, a corrupt last.pt, a read-only folder, stale checkpoints piling up, notices a papermill
run shows on the terminal."""
import io
import os
import signal
import stat
import tempfile

import numpy as np
import pytest
import torch

from tiny_training import generator_weights, train_config

import facefill.train as train
from facefill.errors import FacefillError, Interrupted
from facefill.models import context_encoder as ce
from facefill.runtime import set_seed
from facefill.train import fit, load_checkpoint


def tiny_task():
    set_seed(0)
    return ce.ContextEncoderTask(ce.ContextEncoderConfig(image_size=64, hole=32, width=4, bottleneck=16))


cfg, weights = train_config, generator_weights


def ctrl_c_at(task, k):
    """Ctrl-C while the k-th training step (1-based) runs."""
    step, calls = task.training_step, {"n": 0}

    def training_step(batch, autocast):
        calls["n"] += 1
        if calls["n"] == k:
            raise KeyboardInterrupt
        return step(batch, autocast)

    task.training_step = training_step
    return task


# --------------------------------------------------------------------------- Ctrl-C

def test_ctrl_c_one_line_message_and_resume(images, tmp_path, notices):
    whole = tiny_task()
    fit(whole, images, cfg(), tmp_path / "whole")

    ckpt = tmp_path / "run" / "checkpoints" / "last.pt"
    with pytest.raises(Interrupted) as exc:
        fit(ctrl_c_at(tiny_task(), 5), images, cfg(), tmp_path / "run")
    msg = f"interrupted at step 5; the checkpoint at step 4 ({ckpt}) is kept; rerun the same command to resume"
    assert str(exc.value) == msg and notices == [msg]
    assert isinstance(exc.value, KeyboardInterrupt) and isinstance(exc.value, FacefillError)
    assert exc.value.__suppress_context__  # no "during handling of ... another exception" wall
    assert exc.value._render_traceback_() == [f"Interrupted: {msg}"]  # what IPython / papermill cells show
    assert load_checkpoint(ckpt)["step"] == 4

    resumed = tiny_task()
    fit(resumed, images, cfg(), tmp_path / "run")
    assert notices[-1] == f"resuming from {ckpt} at step 4/6"
    for k, v in weights(whole).items():
        torch.testing.assert_close(weights(resumed)[k], v, rtol=0, atol=0)


def test_ctrl_c_before_the_first_checkpoint(images, tmp_path, notices):
    with pytest.raises(Interrupted, match=r"^interrupted at step 1; no checkpoint was written yet \(the first comes at "
                                          r"step 2\); rerun the same command to start again$"):
        fit(ctrl_c_at(tiny_task(), 1), images, cfg(), tmp_path)
    assert not (tmp_path / "checkpoints" / "last.pt").exists()


def test_ctrl_c_during_a_save_finishes_the_checkpoint_first(images, tmp_path, monkeypatch, notices):
    real_save = torch.save

    def save_hit_by_ctrl_c(obj, f, *a, **kw):
        os.kill(os.getpid(), signal.SIGINT)  # arrives while the checkpoint is being written
        return real_save(obj, f, *a, **kw)

    monkeypatch.setattr(torch, "save", save_hit_by_ctrl_c)
    # Python's own Ctrl-C handler, whatever a library imported by an earlier test installed
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    ckpt = tmp_path / "checkpoints" / "last.pt"
    with pytest.raises(Interrupted, match=r"at step 2; the checkpoint at step 2 "):
        fit(tiny_task(), images, cfg(), tmp_path)
    monkeypatch.undo()
    signal.signal(signal.SIGINT, previous)
    assert load_checkpoint(ckpt)["step"] == 2 and not ckpt.with_suffix(".tmp").exists()


@pytest.mark.parametrize("handler", ["ignore", "custom"])
def test_a_deferred_ctrl_c_goes_to_the_handler_that_was_there(tmp_path, handler):
    from facefill.train import _interrupts_deferred

    seen = []
    before = signal.SIG_IGN if handler == "ignore" else (lambda signum, frame: seen.append(signum))
    previous = signal.signal(signal.SIGINT, before)
    try:
        with _interrupts_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            assert seen == []  # held while the block runs
        assert signal.getsignal(signal.SIGINT) is before  # restored
    finally:
        signal.signal(signal.SIGINT, previous)
    assert seen == ([] if handler == "ignore" else [signal.SIGINT])  # SIG_IGN drops it; a Python handler gets it once


def test_a_deferred_ctrl_c_under_the_os_default_still_stops_the_process():
    """With SIG_DFL (e.g. a worker that never installed Python's handler) the held Ctrl-C must still end it."""
    import subprocess
    import sys

    code = ("import os, signal\nfrom facefill.train import _interrupts_deferred\nsignal.signal(signal.SIGINT, signal.SIG_DFL)\n"
            "with _interrupts_deferred():\n    os.kill(os.getpid(), signal.SIGINT)\n    print('block finished', flush=True)\n"
            "print('Ctrl-C was lost')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.splitlines() == ["block finished"] and done.returncode == -signal.SIGINT, (done.stdout, done.stderr)


# --------------------------------------------------------------------------- corrupt last.pt

def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


class Killed(BaseException):
    """The process dies (kill -9, power cut) at this point: nothing after it runs."""


def test_corrupt_last_resumes_from_previous(images, tmp_path, notices, monkeypatch):
    whole = tiny_task()
    fit(whole, images, cfg(), tmp_path / "whole")

    # killed in the save at step 4 after the new last.pt is in place, before previous.pt (step 2) is deleted
    saves = {"n": 0}

    def killed_on_the_second_save(prev):
        saves["n"] += 1
        if saves["n"] == 2:
            raise Killed
        prev.unlink(missing_ok=True)

    real_drop = train._drop_previous
    monkeypatch.setattr(train, "_drop_previous", killed_on_the_second_save)
    run = tmp_path / "run"
    with pytest.raises(Killed):
        fit(tiny_task(), images, cfg(), run)
    monkeypatch.setattr(train, "_drop_previous", real_drop)  # the process that resumes is a fresh one
    ckpts = run / "checkpoints"
    assert load_checkpoint(ckpts / "last.pt")["step"] == 4 and load_checkpoint(ckpts / "previous.pt")["step"] == 2
    truncate(ckpts / "last.pt")  # and later last.pt is damaged, e.g. by a crash during a non-atomic copy

    notices.clear()
    resumed = tiny_task()
    hist = fit(resumed, images, cfg(), run)
    corrupt = list(ckpts.glob("corrupt-*.pt"))
    assert len(corrupt) == 1 and corrupt[0].stat().st_size > 0  # the corrupt file is kept aside
    assert notices[0].startswith(f"checkpoint {ckpts / 'last.pt'} is unreadable (")
    assert f"moved it to {corrupt[0].name}" in notices[0]
    assert notices[1:] == [f"falling back to the previous checkpoint {ckpts / 'previous.pt'} (step 2)",
                           f"resuming from {ckpts / 'previous.pt'} at step 2/6"]
    assert list(hist["step"]) == [1, 2, 3, 4, 5, 6]
    for k, v in weights(whole).items():
        torch.testing.assert_close(weights(resumed)[k], v, rtol=0, atol=0)


def test_corrupt_last_and_previous_start_afresh(images, tmp_path, notices):
    fit(tiny_task(), images, cfg(), tmp_path)
    ckpts = tmp_path / "checkpoints"
    truncate(ckpts / "last.pt")
    (ckpts / "previous.pt").write_bytes(b"not a checkpoint")
    notices.clear()
    hist = fit(tiny_task(), images, cfg(), tmp_path)
    assert len(list(ckpts.glob("corrupt-*.pt"))) == 2
    assert notices[-1] == f"no usable checkpoint left in {ckpts}: starting afresh"
    assert list(hist["step"]) == [1, 2, 3, 4, 5, 6] and load_checkpoint(ckpts / "last.pt")["step"] == 6


def test_a_save_keeps_the_previous_checkpoint_only_while_it_swaps(images, tmp_path, monkeypatch):
    seen = []  # what the folder holds at the moment a save deletes previous.pt

    def drop(prev):
        seen.append((sorted(p.name for p in prev.parent.iterdir()), load_checkpoint(prev)["step"] if prev.exists() else None))
        prev.unlink(missing_ok=True)

    monkeypatch.setattr(train, "_drop_previous", drop)
    fit(tiny_task(), images, cfg(), tmp_path)
    ckpts = tmp_path / "checkpoints"
    assert seen == [(["last.pt"], None), (["last.pt", "previous.pt"], 2), (["last.pt", "previous.pt"], 4)]
    assert load_checkpoint(ckpts / "last.pt")["step"] == 6
    # steady state: one checkpoint and the export, no previous.pt, no temp files (was last + previous + model)
    assert sorted(p.name for p in ckpts.iterdir()) == ["last.pt", "model.pt"]


def test_a_previous_checkpoint_of_an_older_layout_goes_at_the_next_save(images, tmp_path):
    fit(tiny_task(), images, cfg(steps=4), tmp_path)
    ckpts = tmp_path / "checkpoints"
    (ckpts / "previous.pt").write_bytes((ckpts / "last.pt").read_bytes())  # as earlier versions left it
    fit(tiny_task(), images, cfg(steps=6), tmp_path)  # resumes at 4, saves at 6
    assert sorted(p.name for p in ckpts.iterdir()) == ["last.pt", "model.pt"]


# --------------------------------------------------------------------------- read-only folders

class NeverTrains:
    def __init__(self, task):
        self.modules, self.cfg, self.task = task.modules, task.cfg, task

    def configure(self, device):
        raise AssertionError("training started although the folder cannot be written")


def test_read_only_checkpoint_folder_chmod(images, tmp_path):
    ckpts = tmp_path / "models"
    ckpts.mkdir()
    ckpts.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(ckpts, os.W_OK):
            pytest.skip("running as root: chmod does not make a folder read-only")
        with pytest.raises(FacefillError, match=f"cannot write to the checkpoint folder {ckpts} .*: make it writable "
                                                "or choose another checkpoint_dir"):
            fit(NeverTrains(tiny_task()), images, cfg(), tmp_path / "out", ckpts)
    finally:
        ckpts.chmod(stat.S_IRWXU)


@pytest.mark.parametrize("which", ["checkpoint", "output"])
def test_read_only_folder_probe(images, tmp_path, monkeypatch, which):
    out, ckpts = tmp_path / "out", tmp_path / "models"
    blocked = ckpts if which == "checkpoint" else out
    real_mkstemp = tempfile.mkstemp

    def mkstemp(*a, dir=None, **kw):
        if dir is not None and os.path.abspath(dir) == str(blocked):
            raise PermissionError(13, "Permission denied", str(blocked))
        return real_mkstemp(*a, dir=dir, **kw)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    param = "checkpoint_dir" if which == "checkpoint" else "output_dir"
    with pytest.raises(FacefillError) as exc:
        fit(NeverTrains(tiny_task()), images, cfg(), out, ckpts)
    assert str(exc.value) == (f"cannot write to the {which} folder {blocked} (Permission denied): make it writable "
                              f"or choose another {param}.")


# --------------------------------------------------------------------------- stale checkpoints

def test_only_the_most_recent_stale_checkpoint_is_kept(images, tmp_path, notices):
    ckpts = tmp_path / "checkpoints"
    fit(tiny_task(), images, cfg(seed=3), tmp_path)
    fp3 = load_checkpoint(ckpts / "last.pt")["fingerprint"]
    (ckpts / "unrelated.pt").write_bytes(b"user file")  # not ours: never touched

    notices.clear()
    fit(tiny_task(), images, cfg(seed=4), tmp_path)
    stale3 = ckpts / f"stale-{fp3}.pt"
    assert stale3.exists() and load_checkpoint(stale3)["step"] == 6
    mb = f"{stale3.stat().st_size / 2**20:.1f} MB"
    assert notices[0] == (f"config changed: {ckpts / 'last.pt'} belongs to another configuration; moved it to {stale3} "
                          f"({mb} on disk, the only stale checkpoint kept) and starting afresh")
    fp4 = load_checkpoint(ckpts / "last.pt")["fingerprint"]

    notices.clear()
    fit(tiny_task(), images, cfg(seed=5), tmp_path)
    assert sorted(p.name for p in ckpts.glob("stale-*.pt")) == [f"stale-{fp4}.pt"]
    assert notices[0].endswith(f"; deleted 1 older stale checkpoint(s), {mb} freed")
    assert (ckpts / "unrelated.pt").exists()
    assert sorted(p.name for p in ckpts.iterdir()) == ["last.pt", "model.pt", f"stale-{fp4}.pt", "unrelated.pt"]


def test_shorter_run_moves_the_longer_checkpoint_aside(images, tmp_path, notices):
    fit(tiny_task(), images, cfg(), tmp_path)
    notices.clear()
    fit(tiny_task(), images, cfg(steps=4), tmp_path)
    assert notices[0].startswith(f"steps changed: {tmp_path / 'checkpoints' / 'last.pt'} is at step 6, beyond steps=4; moved it to ")


def test_older_stale_files_are_pruned_at_start(images, tmp_path, notices):
    ckpts = tmp_path / "checkpoints"
    ckpts.mkdir()
    for i, name in enumerate(["stale-aaaa.pt", "stale-bbbb.pt", "stale-cccc.pt"]):
        (ckpts / name).write_bytes(b"x" * 2**20)
        os.utime(ckpts / name, (1_000_000 + i, 1_000_000 + i))
    fit(tiny_task(), images, cfg(steps=2), tmp_path)
    assert sorted(p.name for p in ckpts.glob("stale-*.pt")) == ["stale-cccc.pt"]  # the newest
    assert notices[0] == f"deleted 2 older stale checkpoint(s) in {ckpts}, 2.0 MB freed"


# --------------------------------------------------------------------------- notices reach the terminal

def test_notice_goes_to_stdout_and_the_process_stderr(monkeypatch):
    monkeypatch.delenv("FACEFILL_PIPELINE", raising=False)
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr("sys.stdout", out)  # redirected, as in a Jupyter / papermill kernel
    monkeypatch.setattr("sys.__stderr__", err)
    monkeypatch.setattr("sys.stderr", io.StringIO())
    train.notice("resuming from x at step 2/6")
    assert out.getvalue() == err.getvalue() == "resuming from x at step 2/6\n"

    monkeypatch.setenv("FACEFILL_PIPELINE", "1")  # the pipeline runner echoes the kernel's stdout itself
    train.notice("again")
    assert out.getvalue().endswith("again\n") and "again" not in err.getvalue()


def test_notice_in_an_ipykernel_writes_the_original_stderr_once(monkeypatch):
    monkeypatch.delenv("FACEFILL_PIPELINE", raising=False)
    r, w = os.pipe()

    class KernelStderr(io.StringIO):  # ipykernel's OutStream keeps the real stderr as a dup'd fd
        _original_stdstream_copy = w

    kernel_err, out = KernelStderr(), io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setattr("sys.stderr", kernel_err)
    try:
        train.notice("config changed")
        os.close(w)
        assert os.read(r, 100) == b"config changed\n" and out.getvalue() == "config changed\n"
        assert kernel_err.getvalue() == ""  # not sent back into the notebook a second time
    finally:
        os.close(r)


def test_notice_on_a_plain_terminal_prints_once(monkeypatch):
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setattr("sys.__stdout__", out)
    monkeypatch.setattr("sys.__stderr__", err)
    train.notice("hello")
    assert out.getvalue() == "hello\n" and err.getvalue() == ""
