"""Errors that tell the user what to do.

Every error raised on bad input derives from :class:`FacefillError`, so the
pipeline runner can print the message without a traceback wall.
"""


class FacefillError(Exception):
    """Base class: the message must say what went wrong *and* what to do."""


class ConfigError(FacefillError, ValueError):
    """Unknown or invalid parameter (params.yaml, notebook parameters, dataclass configs)."""


class DataNotFoundError(FacefillError, FileNotFoundError):
    """A dataset archive or processed cache is missing."""


class DataError(FacefillError, ValueError):
    """Data exists but is wrong: corrupt file, wrong size, wrong channel count."""


class MaskError(FacefillError, ValueError):
    """A mask that cannot be used (no hole, wrong shape, values outside {0, 1})."""


class TrainingDivergedError(FacefillError, RuntimeError):
    """A loss became NaN/inf; the last good checkpoint is kept."""


class Interrupted(FacefillError, KeyboardInterrupt):
    """Ctrl-C (or a kernel interrupt) stopped training; the last checkpoint is kept.

    Also a ``KeyboardInterrupt``, so code that handles Ctrl-C still does; in IPython / papermill
    the cell shows this one-line message instead of a traceback.
    """

    def _render_traceback_(self):  # IPython's hook for a custom traceback
        return [f"{type(self).__name__}: {self}"]


class FacefillWarning(UserWarning):
    """Something the user should know although the run goes on (fewer images than asked, upscaled crops)."""


class SplitSizeWarning(FacefillWarning):
    """A split holds fewer images than the parameters ask for (``n_train`` / ``n_test`` / ``limit``)."""
