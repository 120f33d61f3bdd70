"""Interactive exploration: `profile = "default"` in a notebook's parameters cell outside the pipeline
takes that profile's values from params.yaml and the pipeline's checkpoints (reporting.start)."""
import pytest

from facefill import reporting
from facefill.config import repo_root
from facefill.notebooks import declared_parameters
from facefill.pipeline import PIPELINE_ENV, notebook_parameters

NAME = "00_context_encoder"
SECTION = "context_encoder"


def _namespace(**overrides):
    """The globals of the notebook's first cell: its parameters cell as written, then the edits."""
    ns = {"__name__": "__main__", **declared_parameters(repo_root() / "notebooks" / f"{NAME}.py")}
    ns.update(overrides)
    return ns


def test_interactive_default_profile_takes_params_yaml_and_the_pipeline_checkpoints(monkeypatch, capsys):
    monkeypatch.delenv(PIPELINE_ENV, raising=False)
    ns = _namespace(profile="default")
    expected = notebook_parameters(SECTION, "default")
    assert expected["steps"] != ns["steps"]  # the smoke defaults differ from the profile: a real change
    run = reporting.start(NAME, ns)
    root = repo_root()
    for key, value in expected.items():
        if key != "output_dir":
            assert ns[key] == value and run.params[key] == value, key
    assert run.checkpoint_dir == (root / "models" / NAME).resolve()
    assert run.output_dir == (root / "build" / "explore" / NAME).resolve()
    assert ns["output_dir"] == run.params["output_dir"] == f"build/explore/{NAME}"
    out = capsys.readouterr().out
    assert "interactive run with profile='default'" in out and f"steps {6!r}→{expected['steps']!r}" in out
    assert f"models/{NAME}" in out and "resume" in out


def test_pipeline_and_smoke_runs_are_untouched(monkeypatch, tmp_path):
    smoke = _namespace(output_dir=str(tmp_path / "o"), checkpoint_dir=str(tmp_path / "c"))
    before = dict(smoke)
    monkeypatch.delenv(PIPELINE_ENV, raising=False)
    run = reporting.start(NAME, smoke)
    assert smoke == before and run.params["steps"] == before["steps"]
    monkeypatch.setenv(PIPELINE_ENV, "1")  # papermill under `pipeline run` injects the profile itself
    piped = _namespace(profile="default", steps=3, output_dir=str(tmp_path / "p"), checkpoint_dir=str(tmp_path / "pc"))
    run = reporting.start(NAME, piped)
    assert run.params["steps"] == 3 and run.output_dir == (tmp_path / "p").resolve()


def test_an_unknown_profile_is_refused(monkeypatch):
    monkeypatch.delenv(PIPELINE_ENV, raising=False)
    with pytest.raises(Exception, match="profile"):
        reporting.start(NAME, _namespace(profile="paperr"))
