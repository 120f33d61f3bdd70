"""Archive writers shared by the data tests (imported as a plain module: tests/ has no __init__)."""
import io
import tarfile
import zipfile


def write_zip(path, members):
    """A zip at ``path`` holding ``members`` (name → bytes); returns ``path``."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def write_tgz(path, members, reverse=False):
    """A .tgz at ``path`` holding ``members``; ``reverse`` stores them in reverse name order
    (a tar's order need not be sorted, and the reader must not rely on it)."""
    with tarfile.open(path, "w:gz") as tf:
        for name, data in sorted(members.items(), reverse=reverse):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path
