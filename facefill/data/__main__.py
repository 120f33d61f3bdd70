"""``python -m facefill.data``: see :mod:`facefill.data.cli`."""

from facefill.data.cli import main

if __name__ == "__main__":
    main()
