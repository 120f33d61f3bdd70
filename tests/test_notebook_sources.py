"""The .py is each notebook's source: DVC stages depend on it, `pipeline run` executes a notebook built
from it, and JupyterLab saves (outputs in the .ipynb) change neither. Also the kernel-side checks of
``reporting.start`` and what the kernel prints during ``pipeline run``, on a tiny temporary notebook."""
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import papermill
import pytest
import yaml

from facefill import notebooks, pipeline

ROOT = Path(__file__).resolve().parents[1]
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]

TINY = '''\
# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A tiny notebook for the tests

# %% tags=["parameters"]
profile = "smoke"
seed = 0
data_dir = None
processed_dir = "data/processed"
output_dir = "build/tiny"
checkpoint_dir = "build/tiny-models"
steps = 3
width = 8

# %%
import os

from facefill import reporting

reporting.use_pipeline_backend()
import matplotlib

run = reporting.start("90_tiny", globals())
params = run.params
print(f"tiny: resuming from step 2/{steps} (width {width})")
print(f"tiny: FACEFILL_PIPELINE={os.environ.get('FACEFILL_PIPELINE')} backend={matplotlib.get_backend().lower()}")
'''


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A project of one stage, ``tiny`` → notebooks/90_tiny.py, with its own params.yaml."""
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    (root / "facefill").mkdir()
    (root / "notebooks" / "90_tiny.py").write_text(TINY)
    params = {"profile": "default", "seed": 0, "data": {"dir": None, "processed_dir": "data/processed"},
              "base": {"tiny": {"steps": 4, "width": 8}},
              "smoke": {"tiny": {"steps": 3}}, "default": {"tiny": {}}, "paper": {"tiny": {"width": 64}}}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.setenv("FACEFILL_ROOT", str(root))  # the kernel inherits it
    monkeypatch.delenv("FACEFILL_PIPELINE", raising=False)
    monkeypatch.setitem(pipeline.NOTEBOOKS, "tiny", "90_tiny")
    return root


def _ipynb(py: Path, dest: Path) -> Path:
    nbformat.write(notebooks.build(py), dest)
    return dest


# ------------------------------------------------------------------ DVC stages depend on the .py

@pytest.mark.parametrize("stage", list(pipeline.NOTEBOOKS))
def test_stages_depend_on_the_py_source_not_the_ipynb(stage):
    deps = DVC[stage]["deps"]
    assert not [d for d in deps if d.endswith(".ipynb")], "saving the notebook in Jupyter would invalidate the stage"
    assert f"notebooks/{pipeline.NOTEBOOKS[stage]}.py" in deps
    assert DVC[stage]["params"][-2:] == [f"base.{stage}", f"${{profile}}.{stage}"]


def test_run_executes_a_notebook_built_from_the_py(tiny, monkeypatch):
    py, ipynb = tiny / "notebooks" / "90_tiny.py", tiny / "notebooks" / "90_tiny.ipynb"
    saved = notebooks.build(py)  # what JupyterLab saves: outputs, counts, and here even a stale extra cell
    for cell in saved.cells:
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="from a Lab session\n")]
            cell.execution_count = 7
    saved.cells.append(nbformat.v4.new_code_cell("raise RuntimeError('stale cell')"))
    nbformat.write(saved, ipynb)

    seen = {}

    def fake_execute(input_path, output_path, parameters, **kw):
        seen["nb"] = nbformat.read(input_path, as_version=4)
        seen["input"], seen["output"], seen["parameters"] = Path(input_path), Path(output_path), parameters
        seen["env"] = os.environ.get(pipeline.PIPELINE_ENV)

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    executed = pipeline.run("tiny", "smoke")

    assert seen["input"] == seen["output"] == executed == tiny / "reports" / "90_tiny" / "90_tiny.ipynb"
    assert [c.source for c in seen["nb"].cells] == [c.source for c in jupytext.read(py).cells]
    assert all(c.outputs == [] for c in seen["nb"].cells if c.cell_type == "code")
    assert "formats" not in seen["nb"].metadata.get("jupytext", {})  # the executed copy is not paired
    assert seen["parameters"]["steps"] == 3 and seen["parameters"]["width"] == 8  # base + smoke
    assert seen["env"] == "1" and pipeline.PIPELINE_ENV not in os.environ
    assert nbformat.read(ipynb, as_version=4).cells[-1].source.startswith("raise")  # the saved notebook is untouched


def test_saving_from_jupyterlab_leaves_the_py_untouched(tmp_path):
    """The repo's jupytext.toml + jupytext's contents manager (what JupyterLab uses to save)."""
    pytest.importorskip("jupyter_server")
    from jupyter_server.services.contents.largefilemanager import LargeFileManager
    from jupytext.sync_contentsmanager import build_sync_jupytext_contents_manager_class

    name = pipeline.NOTEBOOKS["multiscale"]
    (tmp_path / "notebooks").mkdir()
    shutil.copy(ROOT / "jupytext.toml", tmp_path)
    for suffix in (".py", ".ipynb"):
        shutil.copy(ROOT / "notebooks" / f"{name}{suffix}", tmp_path / "notebooks")
    before = (tmp_path / "notebooks" / f"{name}.py").read_bytes()

    cm = build_sync_jupytext_contents_manager_class(LargeFileManager)(root_dir=str(tmp_path))
    nb = cm.get(f"notebooks/{name}.ipynb")["content"]
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello\n")]
    code.execution_count = 1
    cm.save({"type": "notebook", "format": "json", "content": nb}, f"notebooks/{name}.ipynb")

    assert (tmp_path / "notebooks" / f"{name}.py").read_bytes() == before
    saved = nbformat.read(tmp_path / "notebooks" / f"{name}.ipynb", as_version=4)
    assert any(c.get("outputs") for c in saved.cells)  # the outputs went to the .ipynb only


# ------------------------------------------------------------------ a real kernel

@pytest.mark.slow
def test_pipeline_run_shows_what_the_kernel_prints(tiny, capfd):
    handlers = list(logging.getLogger("papermill").handlers)
    executed = pipeline.run("tiny", "default")
    err = capfd.readouterr().err
    assert "tiny: resuming from step 2/4 (width 8)" in err
    assert "tiny: FACEFILL_PIPELINE=1 backend=agg" in err
    assert "Executing Cell" not in err and "Ending Cell" not in err  # papermill's bookkeeping stays quiet
    assert logging.getLogger("papermill").handlers == handlers
    assert executed.exists()


@pytest.mark.slow
def test_an_unknown_papermill_parameter_fails_in_the_first_cell(tiny, tmp_path):
    nb = _ipynb(tiny / "notebooks" / "90_tiny.py", tmp_path / "in.ipynb")
    params = {"output_dir": str(tmp_path / "o"), "checkpoint_dir": str(tmp_path / "c")}
    with pytest.raises(papermill.PapermillExecutionError) as e:
        papermill.execute_notebook(str(nb), str(tmp_path / "out.ipynb"), parameters={**params, "stepz": 3},
                                   kernel_name="python3", progress_bar=False, cwd=str(tiny))
    assert e.value.ename == "ConfigError"
    assert "90_tiny: unknown parameter(s) ['stepz']" in e.value.evalue and "Did you mean 'steps'?" in e.value.evalue
    assert not (tmp_path / "o").exists()  # stopped before creating anything


@pytest.mark.slow
def test_a_wrongly_typed_papermill_parameter_fails_in_the_first_cell(tiny, tmp_path):
    """Literally `papermill in.ipynb out.ipynb -p steps '"6"'`."""
    nb = _ipynb(tiny / "notebooks" / "90_tiny.py", tmp_path / "in.ipynb")
    out = tmp_path / "out.ipynb"
    proc = subprocess.run([sys.executable, "-m", "papermill", str(nb), str(out), "-p", "steps", '"6"',
                           "-p", "output_dir", str(tmp_path / "o"), "--cwd", str(tiny), "-k", "python3"],
                          capture_output=True, text=True, env=os.environ.copy())
    assert proc.returncode != 0
    message = ("90_tiny (parameters cell or papermill -p): steps='\"6\"' must be an int "
               "(pass -p steps 6 to papermill, or write steps = 6 in the parameters cell)")
    assert message in proc.stderr + proc.stdout or message in out.read_text().replace('\\"', '"')


# ------------------------------------------------------------------ CI runs every notebook

@pytest.mark.slow
def test_ci_fails_when_the_notebooks_would_be_skipped(tmp_path):
    """With CI set, a collection whose notebooks are skipped (no data) is an error, not a green run."""
    empty = tmp_path / "no-data"
    empty.mkdir()
    env = {**os.environ, "CI": "1", "FACEFILL_DATA_DIR": str(empty)}
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q", "--nbval-lax",
           "tests/test_config.py", "notebooks"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "CI must run every notebook with nbval" in proc.stdout + proc.stderr
    assert "00_context_encoder.ipynb" in proc.stdout + proc.stderr


def test_one_edit_in_params_yaml_changes_a_loss_weight_everywhere(tmp_path):
    """params.yaml is the one place: `make sync-notebooks` writes its smoke values into the parameters cell,
    the pipeline injects base + profile, and the study's config is picked from those parameters."""
    import copy

    from facefill import config
    from facefill.models.context_encoder import ContextEncoderConfig

    root = Path(__file__).resolve().parents[1]
    params = copy.deepcopy(config.load_params(root / "params.yaml"))
    params["base"]["context_encoder"]["lambda_adv"] = 0.0123  # the one edit
    py = root / "notebooks" / "00_context_encoder.py"
    synced = notebooks.sync_parameters(py.read_text(), config.section(params, "context_encoder", "smoke"))
    (tmp_path / "00.py").write_text(synced)
    assert notebooks.declared_parameters(tmp_path / "00.py")["lambda_adv"] == 0.0123  # the notebook's cell
    changed = [(a, b) for a, b in zip(py.read_text().splitlines(), synced.splitlines()) if a != b]
    assert len(changed) == 1 and changed[0][1].startswith("lambda_adv = 0.0123")  # nothing else moved
    for profile in ("default", "paper"):  # what dvc repro injects, and the config the study builds from it
        values = config.section(params, "context_encoder", profile)
        assert config.pick(values, ContextEncoderConfig).lambda_adv == 0.0123


def test_sync_parameters_keeps_spelling_comments_and_types():
    src = ('# %% [markdown]\n# x\n\n# %% tags=["parameters"]\n# the cell\nprofile = "smoke"\nlr = 1e-4  # Adam\n'
           'steps = 6\nnames = ["a", "b"]\nflag = True\n\n# %%\nprint(lr)\n')
    out = notebooks.sync_parameters(src, {"lr": 0.0001, "steps": 6.0, "names": ["a", "c"], "flag": False, "other": 1})
    assert "lr = 1e-4  # Adam\n" in out  # equal value: spelling kept
    assert "steps = 6.0\n" in out  # 6.0 is not 6: rewritten
    assert 'names = ["a", "c"]\n' in out and "flag = False\n" in out and out.endswith("# %%\nprint(lr)\n")
    from facefill.errors import ConfigError

    with pytest.raises(ConfigError, match="parameters"):
        notebooks.sync_parameters("# %%\nx = 1\n", {"x": 2})


def test_committed_notebooks_are_in_sync_with_params_yaml():
    root = Path(__file__).resolve().parents[1]
    for py in sorted((root / "notebooks").glob("[0-9][0-9]_*.py")):
        values = notebooks.smoke_values(py, root)
        if values is not None:
            assert notebooks.sync_parameters(py.read_text(), values) == py.read_text(), f"run `make sync-notebooks` ({py.name})"
