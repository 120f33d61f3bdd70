"""Writing the user's output files without ever losing one of theirs.

Three rules, shared by ``facefill inpaint`` / ``facefill upscale`` and :mod:`facefill.video`:

* an output is never one of the inputs (the photo, a mask image, the video, the model): checked by
  :func:`check_output` *before* any model is loaded, together with the extension and the folder;
* an existing output is replaced only when the user said ``--overwrite``;
* the file is written to a temporary name beside it and moved into place at the end
  (:func:`atomic_output`), so Ctrl-C, a full disk or a crash never leave half a file or remove the
  previous one.

Every OS error becomes one :class:`~facefill.errors.FacefillError` line (:func:`os_error`).
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

from .errors import FacefillError


def os_error(e: OSError, action: str, path: str | Path) -> FacefillError:
    """One line for an OS error while ``action`` (e.g. "write") ``path``: the reason and what to do."""
    reason = e.strerror or type(e).__name__
    hint = {30: "the file system is read-only", 13: "you have no permission there", 28: "the disk is full",
            20: "a part of the path is a file, not a folder", 36: "the name is too long"}.get(e.errno or 0)
    return FacefillError(f"cannot {action} {path}: {reason}{f' ({hint})' if hint else ''}; choose another location.")


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when ``a`` and ``b`` name one file (also through links or ``..``); False when either is missing."""
    a, b = Path(a), Path(b)
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _existing_file_ancestor(path: Path) -> Path | None:
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def check_output(path: str | Path, *, inputs: dict[str, str | Path | None], overwrite: bool = False,
                 option: str = "-o", suffixes: tuple[str, ...] | None = None, kind: str = "file") -> Path:
    """Refuse an output ``path`` that would lose something, before any work is done.

    ``inputs``: what the command reads, by the name the user knows it (``{"photo": ..., "mask": ...}``);
    ``suffixes``: the extensions the output may have (lower case, with the dot), ``kind`` names them.
    """
    path = Path(path)
    for name, src in inputs.items():
        if src is not None and (same_file(path, src) or Path(os.path.abspath(path)) == Path(os.path.abspath(src))):
            raise FacefillError(f"{option} {path} is your {name}: facefill never writes over an input. "
                                f"Choose another {option} (e.g. {Path(src).with_name(Path(src).stem + '_out' + Path(src).suffix)}).")
    if path.is_dir():
        raise FacefillError(f"{option} {path} is a folder; give a file name inside it, e.g. {path / ('result' + (suffixes or ('.png',))[0])}.")
    if suffixes is not None and path.suffix.lower() not in suffixes:
        got = f"'{path.suffix}'" if path.suffix else "no extension"
        article = "an" if kind[:1] in "aeiou" else "a"
        raise FacefillError(f"{option} {path} has {got}; {article} {kind} output needs one of {' '.join(sorted(set(suffixes)))}.")
    blocker = _existing_file_ancestor(path)
    if blocker is not None:
        raise FacefillError(f"cannot write {option} {path}: {blocker} is a file, not a folder; choose another location.")
    if path.exists() and not overwrite:
        raise FacefillError(f"{option} {path} exists; pass --overwrite to replace it, or choose another name.")
    return path


@contextlib.contextmanager
def atomic_output(path: str | Path):
    """Yield a temporary path beside ``path`` (same extension); on success move it onto ``path``.

    On any error or Ctrl-C the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise os_error(e, "create the folder", path.parent) from None
    tmp = path.with_name(f".{path.stem}.facefill-partial{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        raise os_error(e, "write", path) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
