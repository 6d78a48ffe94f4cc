"""Shared pieces for the notebook generator (``python -m notebooks.build``)."""

from __future__ import annotations

import textwrap

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def md(text: str):
    """A markdown cell from an indented triple-quoted string."""
    return new_markdown_cell(textwrap.dedent(text).strip("\n"))


def code(text: str, tags: tuple[str, ...] = ()):
    """A code cell (no outputs, no execution count), optionally tagged."""
    cell = new_code_cell(textwrap.dedent(text).strip("\n"))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def parameters(prefix: str, extra: str = ""):
    """The ``parameters`` cell every notebook has: size, figure directory."""
    body = ('# Parameters (a runner may inject others after this cell, as papermill does).\n'
            'SIZE = "full"        # "small": a quick run (the tests use it); "full": as written\n'
            'FIG_DIR = "figures"  # where the figures are written as PNG\n')
    return code(body + textwrap.dedent(extra), tags=("parameters",))


SETUP = '''
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np  # noqa: F401  (not every notebook needs it)
import pandas as pd
from IPython.display import Markdown, display

import gradsync as gs

SMALL = SIZE == "small"
FIGURES = Path(FIG_DIR)
FIGURES.mkdir(parents=True, exist_ok=True)
pd.options.display.float_format = "{:,.3f}".format


def save(fig, name):
    """Write the figure to FIG_DIR as PNG, show it here, then free it."""
    fig.savefig(FIGURES / f"{PREFIX}_{name}.png", dpi=110, bbox_inches="tight")
    display(fig)
    plt.close(fig)
'''


def setup(prefix: str):
    body = textwrap.dedent(SETUP).strip("\n").replace(
        "\nSMALL = ", f'\nPREFIX = "{prefix}"  # figure file names start with it\nSMALL = ', 1)
    return code(body)


def notebook(cells) -> nbformat.NotebookNode:
    nb = new_notebook(cells=list(cells))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb
