"""Reading a source: list the images in an archive or folder, read members without extracting, hash it;
a truncated or damaged archive is a ``DataError`` naming the file."""

from __future__ import annotations

import gzip
import hashlib
import lzma
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path

from facefill.errors import DataError

from .sources import DATASETS, IMAGE_EXTS, find_archive


def _is_image_name(name: str) -> bool:
    parts = name.split("/")
    if any(p.startswith(".") or p == "__MACOSX" for p in parts):  # macOS resource forks, hidden files
        return False
    return name.lower().endswith(IMAGE_EXTS)


def _tar_name(member: tarfile.TarInfo) -> str:
    return member.name.removeprefix("./")


#: what zipfile / tarfile / the decompressors raise on a truncated or damaged archive
_ARCHIVE_ERRORS = (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError)


def _corrupt_archive(path, err: BaseException, member: str | None = None) -> DataError:
    """The one-line DataError for a truncated / damaged archive: which file, what to do."""
    path = Path(path)
    where = next((spec.where.split(" (")[0] for spec in DATASETS.values()
                  if path.name in {Path(a).name for a in spec.archives}), "")
    reason = str(err) or type(err).__name__
    return DataError(
        f"archive {path} is truncated or corrupt ({reason}{f', at member {member}' if member else ''}): "
        f"re-download it{f' from {where}' if where else ''} or replace it with a complete copy; nothing was deleted"
    )


def _check_tar_tail(tf: tarfile.TarFile) -> None:
    # In stream mode tarfile ends the listing silently at the first broken header after the start, so a
    # damaged .tgz would just look smaller. A complete tar ends in zero blocks: anything else is damage.
    while chunk := tf.fileobj.read(1 << 16):
        if chunk.strip(b"\0"):
            raise tarfile.ReadError("broken member header; the rest of the archive was unreadable")


@lru_cache(maxsize=16)
def _archive_names(path: str, _size: int, _mtime_ns: int) -> tuple[str, ...]:
    # keyed on size/mtime so a replaced archive is re-listed; listing LFW's tgz takes ~2.5 s
    try:
        if path.lower().endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                names = [i.filename for i in zf.infolist() if not i.is_dir()]
        else:
            with tarfile.open(path, "r|*") as tf:  # stream mode: no seeking in the gzip
                names = [_tar_name(m) for m in tf if m.isfile()]
                _check_tar_tail(tf)
    except _ARCHIVE_ERRORS as e:
        raise _corrupt_archive(path, e) from None
    return tuple(sorted(n for n in names if _is_image_name(n)))


def _source_names(source: Path) -> list[str]:
    if source.is_dir():
        names = [p.relative_to(source.parent).as_posix() for p in source.rglob("*") if p.is_file()]
        return sorted(n for n in names if _is_image_name(n))
    st = source.stat()
    return list(_archive_names(str(source), st.st_size, st.st_mtime_ns))


def _iter_members(source: Path, wanted: Iterable[str]) -> Iterator[tuple[str, bytes]]:
    """Yield (name, bytes) for the wanted members, in whatever order is cheapest."""
    wanted = set(wanted)
    if not wanted:
        return
    if source.is_dir():
        for name in sorted(wanted):
            yield name, (source.parent / name).read_bytes()
        return
    name = None
    try:
        if source.name.lower().endswith(".zip"):
            with zipfile.ZipFile(source) as zf:
                for name in sorted(wanted):  # zip has random access
                    data = zf.read(name)  # the CRC check of the member happens here
                    yield name, data
        else:
            # gzip has no random access: stream the tar once, keep only wanted members, stop when all seen
            with tarfile.open(source, "r|*") as tf:
                for member in tf:
                    name = _tar_name(member)
                    if member.isfile() and name in wanted:
                        data = tf.extractfile(member).read()
                        yield name, data
                        wanted.discard(name)
                        if not wanted:
                            return
                name = None
                _check_tar_tail(tf)
            if wanted:  # listed before, gone now: the archive changed or broke off
                raise tarfile.ReadError(f"{len(wanted)} listed image(s) missing, e.g. {sorted(wanted)[0]}")
    except _ARCHIVE_ERRORS as e:
        raise _corrupt_archive(source, e, name) from None


def _sha256(source: Path) -> str:
    h = hashlib.sha256()
    if source.is_dir():  # a folder has no single file: hash names and contents in list order
        for name in _source_names(source):
            h.update(name.encode() + b"\0" + hashlib.sha256((source.parent / name).read_bytes()).digest())
        return h.hexdigest()
    with open(source, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def list_images(dataset: str, data_dir=None) -> list[str]:
    """Sorted member names (paths inside the archive / relative to the folder's parent)."""
    source = find_archive(dataset, data_dir)
    names = _source_names(source)
    if not names:
        raise DataError(
            f"{source} holds no images ({', '.join(IMAGE_EXTS)}); replace it with a complete copy of {dataset!r}"
        )
    return names
