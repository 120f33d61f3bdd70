"""params.yaml ↔ notebooks ↔ dvc.yaml consistency, strict parameters, report helpers."""
from pathlib import Path

import jupytext
import nbformat
import papermill
import pytest
import yaml

from facefill import config, notebooks, pipeline, reporting
from facefill.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
STAGES = [s for s in pipeline.NOTEBOOKS if (ROOT / "notebooks" / f"{pipeline.NOTEBOOKS[s]}.py").exists()]


def test_every_profile_section_matches_its_notebook():
    assert pipeline.check_all(ROOT) == 3 * len(STAGES)


@pytest.mark.parametrize("stage", STAGES)
def test_smoke_section_equals_notebook_defaults(stage):
    defaults = notebooks.declared_parameters(pipeline.source_path(stage, ROOT))
    smoke = config.section(PARAMS, stage, "smoke")  # base + the smoke overrides
    assert {k: defaults[k] for k in smoke} == smoke
    assert all(type(defaults[k]) is type(v) for k, v in smoke.items()), "same types too (6 vs 6.0)"
    assert defaults["profile"] == "smoke"


@pytest.mark.parametrize("stage", STAGES)
def test_declared_parameters_agree_with_papermill(stage):
    declared = papermill.inspect_notebook(str(pipeline.notebook_path(stage, ROOT)))
    defaults = {k: eval(v["default"]) for k, v in declared.items()}  # noqa: S307 - our own notebook literals
    assert notebooks.declared_parameters(pipeline.notebook_path(stage, ROOT)) == defaults


@pytest.mark.parametrize("stage", STAGES)
def test_ipynb_is_generated_from_the_py_source(stage):
    ipynb = pipeline.notebook_path(stage, ROOT)
    built = notebooks.build(ipynb.with_suffix(".py"), keep_from=ipynb)
    current = nbformat.read(ipynb, as_version=4)
    assert [c.source for c in current.cells] == [c.source for c in built.cells], "run `make sync-notebooks`"
    tagged = [c for c in current.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    for c in current.cells:
        if c.cell_type == "code" and not notebooks.is_checked(c):
            assert c.outputs == [], "only NBVAL_CHECK_OUTPUT cells keep outputs"


@pytest.mark.parametrize("stage", STAGES)
def test_dvc_stage_reads_its_own_section(stage):
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][stage]
    nb = pipeline.NOTEBOOKS[stage]
    assert f"base.{stage}" in dvc["params"] and f"${{profile}}.{stage}" in dvc["params"]
    assert f"notebooks/{nb}.py" in dvc["deps"], "the stage depends on the notebook's .py source"
    assert not [d for d in dvc["deps"] if d.endswith(".ipynb")], "saving the .ipynb in Jupyter must not invalidate the stage"
    outs = [next(iter(o)) if isinstance(o, dict) else o for o in dvc["outs"]]
    assert f"reports/{nb}" in outs and f"models/{nb}" in outs
    assert dvc["cmd"] == f"python -m facefill.pipeline run {stage}"
    missing = set(pipeline.code_deps(stage, ROOT)) - set(dvc["deps"])
    assert not missing, f"add to the deps of {stage} in dvc.yaml: {sorted(missing)} (python -m facefill.pipeline deps {stage})"
    data_deps = [d for d in dvc["deps"] if d.startswith("data/")]
    assert data_deps and all(d.endswith(".npy") for d in data_deps), "depend on the processed arrays the notebook reads"


def test_unknown_keys_are_errors_with_a_hint(tmp_path):
    bad = dict(PARAMS)
    bad["default"] = {**PARAMS["default"], "context_encoder": {**PARAMS["default"]["context_encoder"], "stepz": 3}}
    with pytest.raises(ConfigError, match="stepz.*Did you mean 'steps'"):
        pipeline.check_against_notebook("context_encoder", pipeline.notebook_parameters("context_encoder", "default", bad, ROOT), ROOT)
    bad["base"] = {**PARAMS["base"], "multiscale": {**PARAMS["base"]["multiscale"], "stepz": 3}}
    with pytest.raises(ConfigError, match=r"\['stepz'\] are not parameters of 01_multiscale_context_encoder.py. Did you mean 'steps'"):
        pipeline.check_against_notebook("multiscale", pipeline.notebook_parameters("multiscale", "default", bad, ROOT), ROOT)
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump({**PARAMS, "profil": "x"}))
    with pytest.raises(ConfigError, match="Did you mean 'profile'"):
        config.load_params(p)
    p.write_text(yaml.safe_dump({**PARAMS, "profile": "fast"}))
    with pytest.raises(ConfigError, match="smoke"):
        config.load_params(p)


def test_pick_builds_dataclasses_strictly():
    from facefill.models.context_encoder import ContextEncoderConfig

    cfg = config.pick({"hole": 32, "image_size": 64, "unrelated": 1}, ContextEncoderConfig)
    assert (cfg.image_size, cfg.hole) == (64, 32)
    with pytest.raises(ConfigError, match="Did you mean 'hole'"):
        config.build(ContextEncoderConfig, {"hol": 3})


def test_compare_table_and_artefacts(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    run = reporting.start("t", {"profile": "smoke", "seed": 0, "output_dir": str(tmp_path / "o"), "checkpoint_dir": str(tmp_path / "c")})
    run.describe(n_test=5)
    df = reporting.compare([{"metric": "psnr", "paper": 18.5, "ours": 20.0, "ci_low": 19.0, "ci_high": 21.0},
                            {"metric": "ssim", "paper": None, "ours": 0.5}])
    assert df.loc[0, "Δ (ours − paper)"] == pytest.approx(1.5)
    assert df["Δ (ours − paper)"].isna().iloc[1]
    run.save_table(df, "t", "title")
    md = (tmp_path / "o" / "t.md").read_text()
    assert "profile: smoke" in md and "n_test: 5" in md and "—" in md
    run.save_metrics({"a": 1.23456789})
    run.save_metrics({"b": float("nan")})
    m = yaml.safe_load((tmp_path / "o" / "metrics.json").read_text())
    assert m["a"] == pytest.approx(1.234568) and m["b"] == "nan" and m["profile"] == "smoke"
    from facefill.experiments import study_data
    assert study_data("pathak2016")["metrics"]["psnr"] == 18.58
    with pytest.raises(ConfigError, match="available"):
        study_data("nope")


def test_dvc_config_never_touches_the_network():
    cfg = (ROOT / ".dvc" / "config").read_text()
    assert "analytics = false" in cfg and "check_update = false" in cfg


def test_readme_and_ci_use_the_same_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make repro" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.slow
def test_missing_data_fails_the_stage_with_instructions(tmp_path, monkeypatch, capsys):
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("FACEFILL_DATA_DIR", str(empty))
    # after `make repro` the checkout has a processed cache, which would make the archives unnecessary
    real = pipeline.notebook_parameters
    monkeypatch.setattr(pipeline, "notebook_parameters",
                        lambda *a, **k: {**real(*a, **k), "processed_dir": str(tmp_path / "no-cache")})
    rc = pipeline.main(["run", "context_encoder", "--profile", "smoke",
                        "--output-dir", str(tmp_path / "out"), "--checkpoint-dir", str(tmp_path / "models")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "DataNotFoundError" in err and "FACEFILL_DATA_DIR" in err and "celeba-hq-256.zip" in err
    assert (tmp_path / "out" / "00_context_encoder.ipynb").exists()  # the executed copy shows the traceback


def test_every_dvc_plot_reads_a_committed_history_with_its_columns():
    """`dvc plots show` must find each plot's file (committed under a stage's report folder) and columns."""
    import pandas as pd

    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    outs = [next(iter(o)) if isinstance(o, dict) else o for st in spec["stages"].values() for o in st.get("outs", [])]
    for entry in spec["plots"]:
        (path, axes), = entry.items()
        assert any(path.startswith(o.rstrip("/") + "/") for o in outs), f"{path} is in no stage's outputs"
        if not (ROOT / path).exists():
            continue  # a checkout without committed reports
        columns = set(pd.read_csv(ROOT / path, nrows=1).columns)
        wanted = [axes["x"], *axes["y"]]
        assert set(wanted) <= columns, f"{path}: no column(s) {sorted(set(wanted) - columns)}"


# --------------------------------------------------------------------------- issue 21: Ctrl-C, failure footer, run manifest

_FAKE_RUN = """
import logging, os, signal, sys, warnings
import papermill
from facefill import pipeline

def execute_notebook(src, dst, **kw):
    out = os.path.dirname(dst)
    open(os.path.join(out, "table.csv"), "w").write("written before the interrupt")
    if {ckpt!r}:
        os.makedirs({ckpt!r}, exist_ok=True)
        open(os.path.join({ckpt!r}, "last.pt"), "wb").write(b"weights")
    try:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the kernel runs
        signal.pause()
    finally:  # what papermill / jupyter_client say while they shut the kernel down
        logging.getLogger("jupyter_client").error("Traceback (most recent call last): ZMQError: Socket operation on non-socket")
        logging.getLogger("papermill").warning("Traceback (most recent call last): KeyboardInterrupt")
        warnings.warn("Traceback (most recent call last): kernel died")

papermill.execute_notebook = execute_notebook
sys.exit(pipeline.main(["run", "context_encoder", "--profile", "smoke", "--output-dir", {out!r}, "--checkpoint-dir", {ckpt_dir!r}]))
"""


@pytest.mark.parametrize("with_checkpoints", [False, True])
def test_ctrl_c_during_a_run_is_one_line_and_exit_130(tmp_path, with_checkpoints):
    import subprocess
    import sys

    out, ckpts = tmp_path / "out", tmp_path / "models"
    code = _FAKE_RUN.format(out=str(out), ckpt_dir=str(ckpts), ckpt=str(ckpts) if with_checkpoints else "")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stderr.count("\n") == 1, done.stderr  # one line
    if with_checkpoints:
        assert done.stderr == (f"facefill: stage context_encoder stopped by Ctrl-C; the checkpoints in {ckpts} are kept; "
                               "rerun the same command to resume from them.\n")
    else:
        assert done.stderr == (f"facefill: stage context_encoder stopped by Ctrl-C; no checkpoint was written to {ckpts}; "
                               "rerun the same command to start again.\n")
    assert "table.csv" in pipeline.read_manifest(out)  # the interrupted run's files are recorded as its own


def test_a_failed_run_says_only_what_is_true_and_records_its_files(tmp_path, monkeypatch, capsys):
    def fails(src, dst, **kw):
        (Path(dst).parent / "partial.csv").write_text("x")
        raise papermill.PapermillExecutionError(3, 4, "boom", "DataError", "no faces", [])

    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(papermill, "execute_notebook", fails)
    out, ckpts = tmp_path / "out", tmp_path / "models"
    rc = pipeline.main(["run", "context_encoder", "--profile", "smoke", "--output-dir", str(out), "--checkpoint-dir", str(ckpts)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.splitlines() == [
        "facefill: error: 00_context_encoder.ipynb failed in cell 4: DataError: no faces",
        f"The executed copy with the traceback is {out / '00_context_encoder.ipynb'}; no checkpoint was written to {ckpts}; "
        "rerun the same command to start again once the cause is fixed.",
    ]
    assert "dvc repro" not in err and "are kept" not in err
    assert pipeline.read_manifest(out) == ["00_context_encoder.ipynb", "partial.csv"]
    # the rerun may replace exactly those files
    assert pipeline.prepare_output_dir(out, ckpts, ROOT, "context_encoder") == out


def test_ctrl_c_in_prepare_is_one_line_and_exit_130(monkeypatch, capsys):
    from facefill.data import prepare_stage

    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare_stage, "_prepare_dataset", interrupted)  # where data.prepare looks it up
    monkeypatch.chdir(ROOT)
    assert pipeline.main(["prepare"]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("facefill: prepare stopped by Ctrl-C; nothing new was written to ")
    assert err.rstrip().endswith("rerun the same command to prepare the rest")


def test_run_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        pipeline.main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for what in ("--profile {smoke,default,paper} parameter profile", "--output-dir DIR where the executed notebook",
                 "--checkpoint-dir DIR where training checkpoints go"):
        assert what in text, what


def test_the_kernel_starts_quietly():
    """No `[IPKernelApp] WARNING ... TCP without encryption` line on every run: encrypted sockets where pyzmq
    can, and the kernel's own log (also its socket tracebacks after a Ctrl-C) off the terminal."""
    import zmq

    opts = pipeline._kernel_options()
    assert opts["extra_arguments"] == ["--IPKernelApp.log_level=CRITICAL"]
    if zmq.has("curve"):
        assert opts["config"]["KernelManager"]["transport_encryption"] == "auto"


@pytest.mark.slow
def test_a_real_kernel_prints_no_kernel_log_lines(tmp_path, capfd):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print('hello from the kernel')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "t.ipynb"
    nbformat.write(nb, path)
    with pipeline.kernel_output_to_stderr():
        papermill.execute_notebook(str(path), str(path), kernel_name="python3", progress_bar=False, log_output=True,
                                   **pipeline._kernel_options())
    out, err = capfd.readouterr()
    assert "hello from the kernel" in err and "IPKernelApp" not in out + err and "encryption" not in out + err


def test_dvc_yaml_code_deps_are_written_by_the_command():
    """`python -m facefill.pipeline deps --write` keeps every stage's package deps complete; here it finds nothing to add."""
    assert pipeline.write_deps(ROOT, check=True) == []


def test_display_stand_ins_are_not_echoed_from_the_kernel():
    import logging

    rec = lambda m: logging.LogRecord("papermill", logging.INFO, "", 0, m, None, None)  # noqa: E731
    assert not pipeline._is_kernel_text(rec("<IPython.core.display.Image object>"))
    assert not pipeline._is_kernel_text(rec("<IPython.core.display.Markdown object>\n"))
    assert not pipeline._is_kernel_text(rec("Executing Cell 3-----"))
    assert pipeline._is_kernel_text(rec("resuming from models/x/last.pt at step 3/6"))
