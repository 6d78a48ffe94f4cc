"""The dependency direction vocab <- hwmodels <- simulator <- {executor, calibration} is never
reversed.

Checked two ways: statically (every import statement in the source, including ones inside
functions) and dynamically (importing hwmodels and simulator in a fresh interpreter loads neither
torch nor mpi4py).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN = {
    "vocab": {"torch", "mpi4py", "hwmodels", "simulator", "executor", "calibration",
              "gradsync"},
    "hwmodels": {"torch", "mpi4py", "simulator", "executor", "calibration", "gradsync"},
    "simulator": {"torch", "mpi4py", "executor", "calibration", "gradsync"},
    "executor": {"calibration", "gradsync"},
    "calibration": {"executor", "torch", "gradsync"},
    "convergence": {"calibration", "torch", "mpi4py", "gradsync"},
}


def imported_top_levels(path: Path) -> set[str]:
    """Top-level package names of every import in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_against_the_direction(package: str) -> None:
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = imported_top_levels(path) & FORBIDDEN[package]
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not offenders, "\n".join(offenders)


def test_importing_the_simulator_loads_neither_torch_nor_mpi() -> None:
    code = ("import sys, pkgutil, importlib, vocab, hwmodels, simulator\n"
            "for pkg in (vocab, hwmodels, simulator):\n"
            "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
            "        importlib.import_module(m.name)\n"
            "print(sorted(n for n in ('torch', 'mpi4py') if n in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"
