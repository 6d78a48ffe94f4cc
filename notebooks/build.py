"""Write the notebooks (no outputs) from their cell lists: ``python -m notebooks.build``.

The .ipynb files are what users open and what the tests run; this generator keeps their
source reviewable as Python. Regenerate after editing a ``_nbNN.py`` module.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import nbformat

from notebooks._nbgen import notebook

HERE = Path(__file__).resolve().parent
NOTEBOOKS = {
    "01_paper_study.ipynb": "notebooks._nb01",
    "02_interconnects.ipynb": "notebooks._nb02",
    "03_scale_out.ipynb": "notebooks._nb03",
    "04_transformers.ipynb": "notebooks._nb04",
    "05_calibrate_and_predict.ipynb": "notebooks._nb05",
    "06_memory.ipynb": "notebooks._nb06",
    "07_speed_vs_accuracy.ipynb": "notebooks._nb07",
    "08_heterogeneous.ipynb": "notebooks._nb08",
}


def generate(name: str) -> nbformat.NotebookNode:
    """The notebook ``name`` (e.g. ``"01_paper_study.ipynb"``) as its generator makes it, in
    memory (the tests compare it with the committed file)."""
    nb = notebook(importlib.import_module(NOTEBOOKS[name]).CELLS)
    for i, cell in enumerate(nb.cells):   # stable ids: regenerating gives no diff noise
        cell["id"] = f"{name[:2]}-{i:02d}"
    return nb


def build(names=None) -> list[Path]:
    """Write every notebook (or those in ``names``); returns the paths written."""
    written = []
    for name in NOTEBOOKS:
        if names and name not in names:
            continue
        path = HERE / name
        nbformat.write(generate(name), path)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in build():
        print(path)
