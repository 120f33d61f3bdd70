"""The checkpoint fingerprint covers the code that trains (issue 27 §6): a change to a task's or a study's
training code retrains, a docstring / comment edit does not, unchanged code resumes as before."""
import importlib
import sys
import textwrap
import uuid

import numpy as np
import pytest
import torch

from tiny_training import train_config

import facefill.train as train
from facefill.codehash import _digest, code_fingerprint
from facefill.models import cascade
from facefill.train import config_fingerprint, load_checkpoint

TASK = '''
"""A tiny context encoder: the task module of these tests."""
from facefill.models import context_encoder as ce

LR_SCALE = 1.0


class TinyTask(ce.ContextEncoderTask):
    """Pathak's CE at 64 px, width 4."""

    def __init__(self):
        super().__init__(ce.ContextEncoderConfig(image_size=64, hole=32, width=4, bottleneck=16))

    def configure(self, device):
        super().configure(device)
        for o in self.optimizers.values():
            for g in o.param_groups:
                g["lr"] *= LR_SCALE
'''

STUDY = '''
"""The study that configures the run (calls fit)."""
from facefill.runtime import set_seed
from facefill.train import fit

from .task import TinyTask

N_TRAIN = 24


def run(images, cfg, out):
    set_seed(0)
    return fit(TinyTask(), images[:N_TRAIN], cfg, out)
'''


def tiny(steps=2):
    return train_config(steps=steps)  # 2 steps, a checkpoint every 2: enough to resume or not


@pytest.fixture
def pkg(tmp_path, monkeypatch):
    """A fresh package ``<name>`` with ``task.py`` and ``study.py``; ``edit(file, old, new)`` rewrites and reloads."""
    name = f"fftask_{uuid.uuid4().hex[:8]}"
    root = tmp_path / "src" / name
    root.mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "task.py").write_text(TASK)
    (root / "study.py").write_text(STUDY)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # a reload must read the edited source
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    importlib.invalidate_caches()

    def edit(file, old, new):
        f = root / file
        assert old in f.read_text()
        f.write_text(f.read_text().replace(old, new))
        for m in ("task", "study"):
            importlib.reload(sys.modules[f"{name}.{m}"])

    study = importlib.import_module(f"{name}.study")
    yield name, study, edit
    for m in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[m]


def test_changed_training_code_invalidates_the_checkpoint_and_retrains(pkg, images, tmp_path, notices):
    name, study, edit = pkg
    study.run(images, tiny(), tmp_path / "run")
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    before = load_checkpoint(last)
    assert f"{name}/task.py" in before["code"] and f"{name}/study.py" in before["code"]
    edit("task.py", "LR_SCALE = 1.0", "LR_SCALE = 0.5")
    notices.clear()
    hist = study.run(images, tiny(), tmp_path / "run")
    assert notices[0].startswith(f"checkpoint {last} was trained by different code ({name}/task.py changed); retraining")
    assert not any(n.startswith("resuming") for n in notices)
    assert (tmp_path / "run" / "checkpoints" / f"stale-{before['fingerprint']}.pt").exists()
    after = load_checkpoint(last)
    assert after["fingerprint"] != before["fingerprint"] and list(hist["step"]) == [1, 2]
    # retrained with the new code: other weights than the old run's
    w0, w1 = before["modules"]["generator"], after["modules"]["generator"]
    assert any(not torch.equal(w0[k], w1[k]) for k in w0 if w0[k].is_floating_point())


def test_changed_study_code_retrains_too(pkg, images, tmp_path, notices):
    name, study, edit = pkg
    study.run(images, tiny(), tmp_path / "run")
    edit("study.py", "N_TRAIN = 24", "N_TRAIN = 20")
    notices.clear()
    study.run(images, tiny(), tmp_path / "run")
    assert f"was trained by different code ({name}/study.py changed); retraining" in notices[0]


def test_docstring_and_comment_edits_keep_the_checkpoint(pkg, images, tmp_path, notices):
    name, study, edit = pkg
    study.run(images, tiny(), tmp_path / "run")
    fp = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["fingerprint"]
    edit("task.py", '"""Pathak\'s CE at 64 px, width 4."""', '"""Pathak\'s CE, 64 px.\n\n    More words."""  # a comment')
    edit("task.py", "LR_SCALE = 1.0\n", "\n# the lr multiplier\nLR_SCALE = 1.0  # unchanged\n")
    edit("study.py", '"""The study that configures the run (calls fit)."""', "# no docstring any more")
    notices.clear()
    study.run(images, tiny(), tmp_path / "run")
    assert notices == [f"resuming from {tmp_path / 'run' / 'checkpoints' / 'last.pt'} at step 2/2"]
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["fingerprint"] == fp


def test_unchanged_code_resumes_as_before(pkg, images, tmp_path, notices):
    _, study, _ = pkg
    study.run(images, tiny(steps=2), tmp_path / "run")
    notices.clear()
    hist = study.run(images, tiny(steps=4), tmp_path / "run")
    assert notices == [f"resuming from {tmp_path / 'run' / 'checkpoints' / 'last.pt'} at step 2/4"]
    assert list(hist["step"]) == [1, 2, 3, 4]


def test_a_checkpoint_without_a_code_hash_retrains(pkg, images, tmp_path, notices):
    _, study, _ = pkg
    study.run(images, tiny(), tmp_path / "run")
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    old = torch.load(last, weights_only=True)
    del old["code"]  # as written before the code was fingerprinted, with the config-only fingerprint of then
    old["fingerprint"] = config_fingerprint(tiny(), None, old["meta"]["config"])
    torch.save(old, last)
    notices.clear()
    study.run(images, tiny(), tmp_path / "run")
    assert notices[0].startswith(f"checkpoint {last} was trained by different code (it records no code hash")
    assert "retraining" in notices[0] and not any(n.startswith("resuming") for n in notices)


def test_the_hashed_units_of_a_task():
    """The task's module and its facefill imports (transitively, lazy ones included), the trainer's
    step-relevant parts, the study when given; not errors / metrics / I/O modules."""
    units = code_fingerprint(cascade.CascadeContextEncoderTask, "facefill.experiments.cascade2018")
    assert set(units) == {"facefill/models/cascade.py", "facefill/models/context_encoder.py", "facefill/adversarial.py",
                          "facefill/masks.py", "facefill/train.py", "facefill/runtime.py",
                          "facefill/experiments/cascade2018.py"}
    assert code_fingerprint(cascade.CascadeContextEncoderTask) == {
        k: v for k, v in units.items() if k != "facefill/experiments/cascade2018.py"}


def test_only_the_named_trainer_definitions_count():
    src = textwrap.dedent('''
        def fit(x):
            return x + 1

        def save(x):
            return x
    ''')
    base = _digest(src.encode(), ("fit",))
    assert _digest(src.replace("return x\n", "return 2 * x\n").encode(), ("fit",)) == base  # save: not a training unit
    assert _digest(src.replace("x + 1", "x + 2").encode(), ("fit",)) != base
    assert _digest(src.replace("return x + 1", '"""doc."""\n    return x + 1  # c').encode(), ("fit",)) == base
