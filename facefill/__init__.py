"""facefill: reproducible face inpainting and super-resolution (five papers, one library)."""

__version__ = "0.1.0"
