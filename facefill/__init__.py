"""facefill: reproducible face inpainting and super-resolution (five papers, one library)."""

__version__ = "0.1.0"


def load(path, device: str = "cpu"):
    """A trained model from ``path`` (a model.pt / last.pt file or a models/ folder): :func:`facefill.api.load`."""
    from .api import load as _load

    return _load(path, device)
