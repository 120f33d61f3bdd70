"""One Markdown file of benchmark results that several runs of a script fill, section by section."""
from pathlib import Path

import pandas as pd


def write_section(path, title: str, heading: str, intro: str, table: pd.DataFrame, append: bool) -> str:
    """Write ``# title``, then ``## heading``, ``intro`` and ``table`` to ``path``; with ``append`` the section is
    added after what ``path`` already holds (its title kept). Returns the section's text."""
    section = f"## {heading}\n\n{intro}\n\n" + table.to_markdown(index=False, floatfmt=".4g") + "\n"
    path = Path(path)
    before = path.read_text() + "\n" if append and path.exists() else f"# {title}\n\n"
    path.write_text(before + section)
    return section
