"""The runner empties only output folders it wrote itself (issue: never delete what is not ours)."""
from pathlib import Path

import pytest

from facefill import pipeline
from facefill.errors import ConfigError


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    (root / ".git").mkdir(parents=True)
    (root / "params.yaml").write_text("profile: smoke\n")
    return root


def test_new_folder_is_created_and_marked(project):
    out = pipeline.prepare_output_dir(project / "build" / "x", project / "build" / "x-models", project, "context_encoder")
    assert (out / pipeline.OUTPUT_MARKER).is_file()


def test_marked_folder_is_emptied_but_kept(project):
    out = pipeline.prepare_output_dir(project / "out", project / "models", project, "context_encoder")
    (out / "old.png").write_text("stale")
    (out / "sub").mkdir()
    (out / "sub" / "f").write_text("x")
    pipeline.prepare_output_dir(out, project / "models", project, "context_encoder")
    assert sorted(p.name for p in out.iterdir()) == [pipeline.OUTPUT_MARKER]


def test_folder_with_a_users_files_is_refused_and_kept(project):
    out = project / "notes"
    out.mkdir()
    (out / "my_notes.txt").write_text("precious")
    with pytest.raises(ConfigError, match="did not write"):
        pipeline.prepare_output_dir(out, project / "models", project, "context_encoder")
    assert (out / "my_notes.txt").read_text() == "precious"


@pytest.mark.parametrize("where", ["root", "parent"])
def test_project_and_its_parents_are_refused(project, where):
    out = project if where == "root" else project.parent
    (out / pipeline.OUTPUT_MARKER).write_text("forged")  # even a marker does not make them ours
    with pytest.raises(ConfigError, match="project folder"):
        pipeline.prepare_output_dir(out, project / "models", project, "context_encoder")
    assert (project / ".git").is_dir() and (project / "params.yaml").is_file()


def test_home_is_refused(project, monkeypatch, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / pipeline.OUTPUT_MARKER).write_text("forged")
    (home / "thesis.tex").write_text("precious")
    monkeypatch.setenv("HOME", str(home))
    with pytest.raises(ConfigError, match="home folder"):
        pipeline.prepare_output_dir(home, project / "models", project, "context_encoder")
    assert (home / "thesis.tex").is_file()


def test_folder_holding_the_checkpoints_is_refused(project):
    out = pipeline.prepare_output_dir(project / "build" / "x", project / "build" / "x-models", project, "context_encoder")
    ckpt = out / "models"
    ckpt.mkdir()
    (ckpt / "last.pt").write_bytes(b"weights")
    with pytest.raises(ConfigError, match="checkpoint folder"):
        pipeline.prepare_output_dir(out, ckpt, project, "context_encoder")
    assert (ckpt / "last.pt").read_bytes() == b"weights"


def test_folder_holding_a_git_repository_is_refused(project):
    out = pipeline.prepare_output_dir(project / "build" / "x", project / "models", project, "context_encoder")
    (out / "clone" / ".git").mkdir(parents=True)
    with pytest.raises(ConfigError, match="git repository"):
        pipeline.prepare_output_dir(out, project / "models", project, "context_encoder")
    assert (out / "clone" / ".git").is_dir()


def test_cli_refuses_the_checkout_with_a_message(capsys, monkeypatch):
    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)
    rc = pipeline.main(["run", "context_encoder", "--profile", "smoke", "--output-dir", "."])
    assert rc == 2
    err = capsys.readouterr().err
    assert "refusing" in err and "project folder" in err
    assert (root / ".git").exists() and (root / "params.yaml").exists()


def test_committed_report_folders_carry_the_marker():
    root = Path(__file__).resolve().parents[1]
    for nb in pipeline.NOTEBOOKS.values():
        if (root / "reports" / nb).is_dir():
            assert (root / "reports" / nb / pipeline.OUTPUT_MARKER).is_file(), nb
