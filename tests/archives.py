"""Archive writers shared by the data tests (imported as a plain module: tests/ has no __init__)."""
import gzip
import io
import tarfile
import zipfile


def write_zip(path, members):
    """A zip at ``path`` holding ``members`` (name → bytes); returns ``path``."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)  # no clock in the bytes
    return path


def write_tgz(path, members, reverse=False):
    """A .tgz at ``path`` holding ``members``; ``reverse`` stores them in reverse name order
    (a tar's order need not be sorted, and the reader must not rely on it)."""
    # gzip stamps its header with the time of writing: mtime=0 makes the same members give the same bytes, so an
    # archive rewritten a second later is still the same source (its sha256 keys the prepared cache)
    with gzip.GzipFile(path, "wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tf:
        for name, data in sorted(members.items(), reverse=reverse):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path
