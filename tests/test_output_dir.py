"""The runner empties only output folders it wrote itself (issue: never delete what is not ours)."""
import errno
import hashlib
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
    (out / "empty").mkdir()
    assert pipeline.record_manifest(out, "context_encoder") == ["empty/", "old.png", "sub/f"]  # what the run wrote
    pipeline.prepare_output_dir(out, project / "models", project, "context_encoder")
    assert sorted(p.name for p in out.iterdir()) == [pipeline.OUTPUT_MARKER]
    assert pipeline.read_manifest(out) is None  # a new run: nothing recorded until it ends


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


# --------------------------------------------------------------------------- issue 21: never delete what the run did not write

def _md5s(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def _earlier_run(project) -> Path:
    """An output folder as a finished run leaves it: its files, and the marker listing them."""
    out = pipeline.prepare_output_dir(project / "build" / "n4", project / "models", project, "context_encoder")
    (out / "00_context_encoder.ipynb").write_text("{}")
    (out / "figures").mkdir()
    (out / "figures" / "fig.png").write_bytes(b"png")
    pipeline.record_manifest(out, "context_encoder")
    return out


def test_a_users_file_and_folder_in_a_marked_folder_survive_and_are_named(project):
    out = _earlier_run(project)
    (out / "notes.txt").write_text("my notes")
    (out / "mine").mkdir()
    (out / "mine" / "data.csv").write_text("a,b\n1,2\n")
    before = _md5s(out)
    with pytest.raises(ConfigError) as e:
        pipeline.prepare_output_dir(out, project / "models", project, "context_encoder")
    msg = str(e.value)
    assert "\n" not in msg and "mine/data.csv" in msg and "notes.txt" in msg
    assert "move these away or choose another --output-dir" in msg
    assert "00_context_encoder.ipynb" not in msg  # the run's own files are not the problem
    assert _md5s(out) == before  # nothing deleted, not even the run's own files

    (out / "notes.txt").unlink()  # the user moves them away: the rerun works and empties the folder
    (out / "mine" / "data.csv").unlink()
    (out / "mine").rmdir()
    pipeline.prepare_output_dir(out, project / "models", project, "context_encoder")
    assert [p.name for p in out.iterdir()] == [pipeline.OUTPUT_MARKER]


def test_a_clean_rerun_replaces_only_what_the_run_wrote(project):
    out = _earlier_run(project)
    (out / "figures" / "fig.png").unlink()  # a run's folder left empty by the user is still the run's
    pipeline.prepare_output_dir(out, project / "models", project, "context_encoder")
    assert [p.name for p in out.iterdir()] == [pipeline.OUTPUT_MARKER]


def test_many_unknown_files_are_summarised_on_one_line(project):
    out = _earlier_run(project)
    for i in range(8):
        (out / f"user{i}.txt").write_text("x")
    with pytest.raises(ConfigError, match=r"holds 8 file\(s\) the last run did not write: user0.txt, user1.txt, user2.txt, "
                                          r"user3.txt, user4.txt \(and 3 more\);"):
        pipeline.prepare_output_dir(out, project / "models", project, "context_encoder")
    assert len(list(out.glob("user*.txt"))) == 8


@pytest.mark.parametrize("marker", ["Written by `python -m facefill.pipeline run context_encoder`; a rerun empties this folder.\n",
                                    None])
def test_a_marker_without_a_list_of_files_is_refused_unless_alone(project, marker):
    """An older facefill's marker (plain text), or a run killed before it recorded its files (files: null)."""
    out = pipeline.prepare_output_dir(project / "build" / "old", project / "models", project, "context_encoder")
    if marker is not None:
        (out / pipeline.OUTPUT_MARKER).write_text(marker)
    pipeline.prepare_output_dir(out, project / "models", project, "context_encoder")  # only the marker: fine
    (out / "table.csv").write_text("old output")
    (out / "notes.txt").write_text("precious")
    before = _md5s(out)
    with pytest.raises(ConfigError) as e:
        pipeline.prepare_output_dir(out, project / "models", project, "context_encoder")
    msg = str(e.value)
    assert "no finished run recorded" in msg and "notes.txt, table.csv" in msg and "choose another --output-dir" in msg
    assert "\n" not in msg and _md5s(out) == before


def test_a_forged_list_never_reaches_outside_the_folder(project):
    out = _earlier_run(project)
    victim = project / "precious.txt"
    victim.write_text("keep me")
    marker = out / pipeline.OUTPUT_MARKER
    marker.write_text(marker.read_text().replace('"files": [', '"files": [\n  "../../precious.txt",'))
    pipeline.prepare_output_dir(out, project / "models", project, "context_encoder")
    assert victim.read_text() == "keep me"


@pytest.mark.parametrize("what", ["mkdir", "write_text", "unlink"])
def test_a_read_only_file_system_is_one_line(project, monkeypatch, what):
    out = _earlier_run(project) if what == "unlink" else project / "build" / "ro"
    real = getattr(Path, what)

    def read_only(self, *a, **kw):
        if project in self.parents or self == project:
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real(self, *a, **kw)

    monkeypatch.setattr(Path, what, read_only)
    with pytest.raises(ConfigError) as e:
        pipeline.prepare_output_dir(out, project / "models", project, "context_encoder")
    msg = str(e.value)
    assert msg.startswith(f"cannot use the output folder {out} (Read-only file system")
    assert msg.endswith("make it writable or choose another --output-dir, e.g. build/context_encoder.") and "\n" not in msg


def test_the_cli_prints_a_read_only_folder_as_one_line(project, monkeypatch, capsys):
    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)
    real = Path.mkdir

    def read_only(self, *a, **kw):
        if self.name == "ro-out":
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real(self, *a, **kw)

    monkeypatch.setattr(Path, "mkdir", read_only)
    rc = pipeline.main(["run", "context_encoder", "--profile", "smoke", "--output-dir", str(project / "ro-out"),
                        "--checkpoint-dir", str(project / "ro-models")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"facefill: error: cannot use the output folder {project / 'ro-out'} (Read-only file system)")


def test_committed_report_folders_list_the_files_they_hold(tmp_path):
    """`pipeline run STAGE` onto reports/<notebook>/ must keep working: each committed marker lists exactly
    the files committed beside it (all written by runs), so a rerun may replace them."""
    import shutil

    root = Path(__file__).resolve().parents[1]
    for stage, nb in pipeline.NOTEBOOKS.items():
        folder = root / "reports" / nb
        if not folder.is_dir():
            continue
        assert pipeline.read_manifest(folder) == pipeline._entries(folder), nb
        copy = tmp_path / "project" / "reports" / nb
        shutil.copytree(folder, copy)
        pipeline.prepare_output_dir(copy, tmp_path / "project" / "models", tmp_path / "project", stage)
        assert [p.name for p in copy.iterdir()] == [pipeline.OUTPUT_MARKER], nb
