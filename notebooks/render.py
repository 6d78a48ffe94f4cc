"""Execute the notebooks and write their figures: ``python -m notebooks.render --out DIR``.

    python -m notebooks.render --out figures/ [--size small|full] [--only 01,03] [--save-executed]
        [--timeout-s 600]

Each notebook gets ``--timeout-s`` seconds in all (and each cell as long): one that fails or
runs out of time is recorded and the next one runs; the command then exits 1 naming every
notebook that failed (0 when all ran).

Parameters are injected like papermill does: a cell tagged ``injected-parameters`` right after
the cell tagged ``parameters``. Each notebook writes its PNG figures to ``DIR``. The notebooks
on disk are never modified (``--save-executed`` writes executed copies into ``DIR``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient
from vocab.argtypes import whole

HERE = Path(__file__).resolve().parent
KERNEL = "python3"
#: The README's three key figures: rendered figure -> name under ``--key-figures DIR``.
KEY_FIGURES = {"01_progress_rules.png": "paper_study.png",
               "02_speedup_by_wire.png": "interconnect.png",
               "03_efficiency.png": "scale_out.png"}


def notebook_paths(only: Sequence[str] = ()) -> list[Path]:
    """The notebooks in order, or those whose name starts with one of ``only``."""
    paths = sorted(HERE.glob("[0-9][0-9]_*.ipynb"))
    return [p for p in paths if not only or any(p.name.startswith(o) for o in only)]


def ensure_kernel() -> str:
    """The kernel name to use: ``python3`` if installed, else one for this interpreter.

    A fresh virtualenv normally has ipykernel's spec under ``sys.prefix``; where it does not,
    a spec pointing at ``sys.executable`` is written to a temporary directory on JUPYTER_PATH.
    """
    if KERNEL in KernelSpecManager().find_kernel_specs():
        return KERNEL
    root = Path(tempfile.mkdtemp(prefix="gradsync-kernel-"))
    spec_dir = root / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (gradsync)", "language": "python"}))
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        [str(root), *filter(None, [os.environ.get("JUPYTER_PATH")])])
    return KERNEL


def inject(nb: nbformat.NotebookNode, params: Mapping[str, Any]) -> nbformat.NotebookNode:
    """Insert (or replace) an ``injected-parameters`` cell after the ``parameters`` cell."""
    cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    index = next((i for i, c in enumerate(cells)
                  if "parameters" in c.metadata.get("tags", [])), -1)
    source = "# Injected parameters\n" + "\n".join(f"{k} = {v!r}" for k, v in params.items())
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["injected-parameters"]
    cell["id"] = "injected-parameters"
    cells.insert(index + 1, cell)
    nb.cells = cells
    return nb


def execute(path: str | Path, params: Mapping[str, Any] | None = None,
            timeout_s: int = 600) -> nbformat.NotebookNode:
    """Run a notebook top to bottom (in its own folder) with ``params``; returns it executed.

    ``timeout_s`` bounds each cell and the notebook as a whole: a kernel still running when
    the notebook's time is up is interrupted (TimeoutError)."""
    path = Path(path)
    nb = inject(nbformat.read(path, as_version=4), params or {})
    deadline = time.monotonic() + timeout_s
    # Each cell may run only for what is left of the notebook's time.
    client = NotebookClient(nb, timeout_func=lambda cell: max(1, int(deadline - time.monotonic())),
                            kernel_name=ensure_kernel(),
                            resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
    except Exception:
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{path.name}: more than {timeout_s} s") from None
        raise
    return nb


def render_all(paths: Sequence[Path], params: Mapping[str, Any], timeout_s: int,
               out: Path | None = None) -> dict[str, str]:
    """Run each notebook in turn; a failure is recorded and the next one runs. Returns
    notebook name -> failure (the error's last line), for the ones that failed."""
    failures: dict[str, str] = {}
    for path in paths:
        started = time.perf_counter()
        try:
            nb = execute(path, params, timeout_s=timeout_s)
        except Exception as exc:  # a notebook's own error, whatever its type: go on
            failures[path.name] = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
            print(f"{path.name}: FAILED after {time.perf_counter() - started:.0f} s: "
                  f"{failures[path.name]}", flush=True)
            continue
        if out is not None:
            nbformat.write(nb, out / path.name)
        print(f"{path.name}: {time.perf_counter() - started:.0f} s", flush=True)
    return failures


def copy_key_figures(out: Path, dest: Path) -> None:
    """Copy the key figures that were rendered into ``dest`` under their README names."""
    dest.mkdir(parents=True, exist_ok=True)
    for source, name in KEY_FIGURES.items():
        if (out / source).exists():
            shutil.copyfile(out / source, dest / name)
            print(f"{dest / name}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m notebooks.render", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="directory for the figures (PNG)")
    parser.add_argument("--size", choices=("small", "full"), default="full")
    parser.add_argument("--only", default="", help="comma-separated notebook prefixes, e.g. 01,05")
    parser.add_argument("--save-executed", action="store_true",
                        help="also write the executed notebooks into --out")
    parser.add_argument("--key-figures", metavar="DIR",
                        help="copy the README's key figures there (make figures: docs/figures)")
    parser.add_argument("--timeout-s", type=whole(1, 86_400, what="seconds"), default=600,
                        help="seconds per notebook before it is stopped and recorded as "
                             "failed (default 600)")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    paths = notebook_paths([o for o in args.only.split(",") if o])
    failures = render_all(paths, {"SIZE": args.size, "FIG_DIR": str(out)}, args.timeout_s,
                          out if args.save_executed else None)
    figures = sorted(out.glob("*.png"))
    print(f"{len(figures)} figures in {out}")
    if args.key_figures:
        copy_key_figures(out, Path(args.key_figures))
    if failures:
        print(f"failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
