"""Every entry point that reads a user's file, against a class of bad files.

The README promises that bad input is one line naming the file (and the field and value
where there is one) with exit status 2, no traceback, and nothing the user had changed.
``tests/test_bad_inputs.py`` walks the CLI's flags and output paths; this battery walks its
*inputs*: every ``gradsync`` subcommand that takes a file and every ``python -m`` module
under ``benchmarks/``, ``calibration/`` and ``executor/`` that reads one, each against

- faults of any file: missing, a directory, empty, bytes that are not UTF-8, a symlink loop,
  unreadable (``chmod 000``; skipped as root, who reads it anyway);
- faults of its format: truncated, the wrong top-level type (a YAML or JSON list, a CSV
  without its header), an unknown key or column, and NaN, inf, -1, 0 and 1e300 in a field
  whose range excludes them.

Each entry point is called in-process (``main(argv)``) in a scratch folder whose bytes are
hashed before and after. A new entry point that reads files joins :data:`ENTRIES`.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.cli_helpers import run_entry, tree_digest


ROOT = Path(__file__).resolve().parent.parent

# -- valid files, each the base its format's faults are made from ---------------------------
CLUSTER = (ROOT / "hwmodels" / "presets" / "local-cpu.yaml").read_text()
HETERO = CLUSTER.replace("nodes: {value: 1, source: \"one machine\"}", "nodes: 2") \
    .replace("max_nodes: {value: 1, source: \"this machine only\"}", "max_nodes: 2") \
    + "slow_nodes: {1: 1.5}\n"
WORKLOAD = (ROOT / "vocab" / "workloads" / "alexnet-ci.yaml").read_text()
STACK = "name: my-ddp\nlibrary: nccl2.8\nlaunch: {value: 10 us, source: mine}\nsource: mine\n"
FABRIC = "kind: ethernet\nbandwidth: 1.2 GB/s\nlatency: 20 us\nsource: mine\n"
GRID = "models: [alexnet-ci]\nnodes: [1, 2]\nstrategies: [sync]\niterations: 1\n"
PENALTY = "staleness,global_batch,penalty\n1,256,1.1\n2,512,1.3\n"
PUBLISHED_HEADER = ("set,source,cluster,nodes,gpus_per_node,model,batch,precision,stack,"
                    "strategy,bucket_mb,throughput_1gpu,throughput,baseline_gpus")
PUBLISHED = (PUBLISHED_HEADER + "\nmine,my paper,dgx1-v100,1,8,alexnet-ci,32,fp32,ddp,"
             "bucketed,25,1000,7000,1\n")
NCCL_LOG = (
    "# nThread 1 nGpus 1 minBytes 65536 maxBytes 131072 step: 2(factor) warmup iters: 5 iters: 20\n#\n"
    "# Using devices\n#   Rank  0 Pid 1 on h0 device  0 [0x3d] Tesla V100-SXM2-16GB\n"
    "#   Rank  1 Pid 2 on h0 device  1 [0x3e] Tesla V100-SXM2-16GB\n#\n"
    "#       size         count    type   redop     time   algbw   busbw  error"
    "     time   algbw   busbw  error\n"
    "#        (B)    (elements)                     (us)  (GB/s)  (GB/s)"
    "            (us)  (GB/s)  (GB/s)\n"
    "       65536         16384   float     sum    12.0    5.46    5.46  0e+00"
    "    11.9    5.51    5.51  0e+00\n"
    "      131072         32768   float     sum    20.0    6.55    6.55  0e+00"
    "    19.9    6.59    6.59  0e+00\n"
    "# Out of bounds values : 0 OK\n# Avg bus bandwidth    : 6.0275\n#\n")
OSU_LOG = ("# OSU MPI Allreduce Latency Test v5.6.2\n# Size       Avg Latency(us)\n"
           "4                       1.95\n8                       1.93\n"
           "1048576               512.30\n")
BENCH = "op,nranks,nbytes,repeat,seconds\nallreduce,2,4,0,1.2e-05\nallreduce,2,1048576,0,0.0011\n"
PROFILE = ("device: local-cpu\nmodel: alexnet-ci\nbatch: 8\nupdate_s: 0.001\nsource: mine\n"
           "layers:\n" + "".join(f"  - {{name: {n}, forward_s: 0.001, backward_s: 0.002}}\n"
                                  for n in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6",
                                            "fc7", "fc8")))
USER_MODEL = ("from torch import nn\n\n\ndef net():\n    return nn.Sequential(nn.Linear(8, 16), "
              "nn.ReLU(), nn.Linear(16, 2))\n\n\nnet.input_shape = (8,)\n")
RUNS = json.dumps([["--model", "tiny-mlp", "--batch", "4", "--steps", "2", "--out", "r1"]])


#: The synthetic measurements (``calibration.synthetic``) every calibrate and validate case
#: starts from: a bench-net directory, a one-rank run, a fit run and the fitted cluster file.
SYNTH: dict[str, Path] = {}


@pytest.fixture(scope="module", autouse=True)
def synthetic_measurements(tmp_path_factory) -> None:
    from calibration import synthetic
    from calibration.calibrate import calibrate, mpich_algorithm
    from simulator.roofline import roofline_profile
    from vocab.strategies import StrategySpec
    from vocab.workload import load_workload
    d = tmp_path_factory.mktemp("synthetic")
    cluster = synthetic.local_machine()
    SYNTH["bench"] = synthetic.write_bench(d / "bench", cluster, mpich_algorithm, ranks=(2,))
    profile = roofline_profile(load_workload("alexnet-ci"), cluster.device, 8)
    SYNTH["run"] = synthetic.write_run(d / "n1", cluster.with_devices_per_node(1), "alexnet-ci",
                                       StrategySpec("sync"), 8, profile, iterations=5)
    SYNTH["run2"] = synthetic.write_run(d / "sync-n2", cluster, "alexnet-ci",
                                        StrategySpec("sync"), 8, profile, iterations=5)
    SYNTH["fitted"] = d / "fitted.yaml"
    calibrate([SYNTH["bench"], SYNTH["run"], SYNTH["run2"]], SYNTH["fitted"])


def _copy(name: str, tmp: Path, folder: str) -> Path:
    """A copy of the synthetic ``name`` directory at ``tmp/folder`` (the fault goes in it)."""
    target = tmp / folder
    if not target.exists():
        shutil.copytree(SYNTH[name], target)
    return target


# -- the entry points -----------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """One way a user's file gets in: ``argv(tmp, path)`` names the file at ``path``."""

    main: str                                 # "gradsync" or "pkg.module" (its main(argv))
    argv: Callable[[Path, str], list[str]]
    name: str                                 # the file's name, as the entry needs it
    fmt: str                                  # yaml, json, csv, log, npz, parquet
    valid: Callable[[], str | bytes] | str = ""
    #: (field the one line must name, valid file -> file with a number in that field).
    number: tuple[str, Callable[[Any, str], Any]] | None = None
    #: The file sits inside this folder, which is what the entry point is given.
    folder: str = ""
    #: Makes the other inputs (a copied directory the fault goes in) before the fault.
    setup: Callable[[Path], object] | None = None
    #: The bad numbers of :data:`BAD_NUMBERS` the field's range excludes (default: all).
    excludes: tuple[str, ...] = ("nan", "inf", "-1", "0", "huge")
    #: Format faults that are not faults for this file, each with its reason beside it.
    skip: tuple[str, ...] = ()
    #: A folder of logs skips each file that is no log (a SOURCES.md beside them), so a file
    #: that is empty, binary or no file at all leaves the folder with none: its line names
    #: the folder.
    skipped_in_folder: bool = False


def _yaml_field(key: str) -> Callable[[str, str], str]:
    """Replace the value of top-level ``key:`` (one line) by the number."""
    return lambda text, v: re.sub(rf"(?m)^{key}:.*$", f"{key}: {v}", text)


def _csv_cell(column: str) -> Callable[[str, str], str]:
    """Put the number into ``column`` of the CSV's first data row."""
    def put(text: str, v: str) -> str:
        lines = text.splitlines()
        header = lines[0].split(",")
        cells = lines[1].split(",")
        cells[header.index(column)] = v
        return "\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n"
    return put


def _trace_bytes(run: str) -> bytes:
    return (SYNTH[run] / "trace.parquet").read_bytes()


def _trace_time(data: bytes, v: str) -> bytes:
    """The trace with its first row's ``start_s`` set to ``v``."""
    import tempfile

    import pyarrow as pa
    import pyarrow.parquet as pq

    from vocab.trace import write_trace
    frame = pq.read_table(pa.BufferReader(data)).to_pandas()
    frame.loc[0, "start_s"] = float(v)
    with tempfile.TemporaryDirectory() as folder:
        return write_trace(frame, folder).read_bytes()


def _log_time(text: str, v: str) -> str:
    return text.replace("    12.0 ", f"    {v} ", 1)


def _osu_latency(text: str, v: str) -> str:
    return text.replace("1.95", v, 1)


SIM = ["--iterations", "1", "--strategy", "sync"]

ENTRIES: dict[str, Entry] = {
    "simulate --cluster": Entry("gradsync", lambda t, p: ["simulate", "--cluster", p,
                                                          "--model", "alexnet-ci", *SIM],
                                "c.yaml", "yaml", CLUSTER, ("nodes", _yaml_field("nodes"))),
    "simulate --cluster (node groups)": Entry(
        "gradsync", lambda t, p: ["simulate", "--cluster", p, "--model", "alexnet-ci", *SIM,
                                  "--fidelity", "detailed"],
        "h.yaml", "yaml", HETERO,
        ("slow_nodes", lambda text, v: text.replace("{1: 1.5}", f"{{1: {v}}}"))),
    "simulate --model": Entry("gradsync", lambda t, p: ["simulate", "--model", p,
                                                        "--cluster", "local-cpu", *SIM],
                              "w.yaml", "yaml", WORKLOAD,
                              ("default_batch", _yaml_field("default_batch"))),
    "simulate --stack": Entry("gradsync", lambda t, p: ["simulate", "--stack", p, "--model",
                                                        "alexnet-ci", *SIM],
                              "s.yaml", "yaml", STACK,
                              ("launch", lambda text, v: text.replace("10 us", f"{v} us")),
                              excludes=("nan", "inf", "-1", "huge")),  # 0: no framework cost
    "simulate --fabric": Entry("gradsync", lambda t, p: ["simulate", "--fabric", p, "--model",
                                                         "alexnet-ci", *SIM],
                               "f.yaml", "yaml", FABRIC,
                               ("bandwidth", lambda text, v: text.replace("1.2 GB", f"{v} GB"))),
    "hw show": Entry("gradsync", lambda t, p: ["hw", "show", p], "c.yaml", "yaml", CLUSTER,
                     ("nodes", _yaml_field("nodes"))),
    "workload show": Entry("gradsync", lambda t, p: ["workload", "show", p], "w.yaml", "yaml",
                           WORKLOAD, ("total_params", _yaml_field("total_params"))),
    "sweep --grid": Entry("gradsync", lambda t, p: ["sweep", "--grid", p, "--no-progress",
                                                    "--out", "s.csv"],
                          "g.yaml", "yaml", GRID, ("nodes", _yaml_field("nodes"))),
    "whatif --cluster": Entry("gradsync", lambda t, p: ["whatif", "--cluster", p, "--model",
                                                        "alexnet-ci", "--iterations", "1"],
                              "c.yaml", "yaml", CLUSTER, ("nodes", _yaml_field("nodes"))),
    "tta --penalty": Entry("gradsync", lambda t, p: ["tta", "--cluster", "local-cpu", "--model",
                                                     "alexnet-ci", "--strategy", "sync,delayed",
                                                     "--staleness", "1", "--sync-steps", "100",
                                                     "--penalty", p],
                           "p.csv", "csv", PENALTY, ("global_batch", _csv_cell("global_batch"))),
    "calibrate nccl-tests log": Entry(
        "gradsync", lambda t, p: ["calibrate", p, "--cluster", "abci-v100", "--out", "fit.yaml"],
        "all_reduce_perf.log", "log", NCCL_LOG, ("time", _log_time),
        excludes=("nan", "inf", "-1", "huge")),     # 0: a time below the log's 0.01 us
    "calibrate OSU log": Entry(
        "gradsync", lambda t, p: ["calibrate", p, "--osu-ranks", "4", "--osu-nodes", "2",
                                  "--cluster", "abci-v100", "--out", "fit.yaml"],
        "osu.txt", "log", OSU_LOG, ("latency", _osu_latency),
        excludes=("nan", "inf", "-1", "huge")),
    "calibrate bench-net dir": Entry(
        "gradsync", lambda t, p: ["calibrate", p, "--out", "fit.yaml"], "bench.csv", "csv",
        lambda: (SYNTH["bench"] / "bench.csv").read_text(), ("seconds", _csv_cell("seconds")),
        folder="bench", setup=lambda t: _copy("bench", t, "bench")),
    "calibrate run dir": Entry(
        "gradsync", lambda t, p: ["calibrate", str(SYNTH["bench"]), p, "--out", "fit.yaml"],
        "run.json", "json", lambda: (SYNTH["run"] / "run.json").read_text(),
        folder="somerun", setup=lambda t: _copy("run", t, "somerun"),
        skip=("unknown key",)),     # make_run_record(**extra): records carry extra keys
    "calibrate run dir trace": Entry(
        "gradsync", lambda t, p: ["calibrate", str(SYNTH["bench"]), p, "--out", "fit.yaml"],
        "trace.parquet", "parquet", lambda: _trace_bytes("run"), ("start_s", _trace_time),
        folder="somerun", setup=lambda t: _copy("run", t, "somerun"),
        excludes=("nan", "inf")),       # times before rank 0's start, or past a day, are fine
    "validate run dir trace": Entry(
        "gradsync", lambda t, p: ["validate", p, "--cluster", str(SYNTH["fitted"])],
        "trace.parquet", "parquet", lambda: _trace_bytes("run2"), ("start_s", _trace_time),
        folder="somerun", setup=lambda t: _copy("run2", t, "somerun"), excludes=("nan", "inf")),
    "calibrate --profile": Entry(
        "gradsync", lambda t, p: ["calibrate", str(SYNTH["bench"]), "--profile", p, "--out",
                                  "fit.yaml"],
        "prof.yaml", "yaml", PROFILE, ("update_s", _yaml_field("update_s")),
        excludes=("nan", "inf", "-1", "huge")),     # 0: an update too short to time
    "validate --cluster": Entry(
        "gradsync", lambda t, p: ["validate", str(SYNTH["run2"]), "--cluster", p], "c.yaml",
        "yaml", lambda: SYNTH["fitted"].read_text(), ("nodes", _yaml_field("nodes"))),
    "validate run dir": Entry(
        "gradsync", lambda t, p: ["validate", p, "--cluster", str(SYNTH["fitted"])], "run.json",
        "json", lambda: (SYNTH["run2"] / "run.json").read_text(), folder="somerun",
        setup=lambda t: _copy("run2", t, "somerun"), skip=("unknown key",)),  # as above
    "run --data npz": Entry(
        "gradsync", lambda t, p: ["run", "--model", "tiny-mlp", "--batch", "4", "--steps", "2",
                                  "--data", f"npz:{p}", "--out", "r"], "d.npz", "npz"),
    "workload from-torch FILE.py:FACTORY": Entry(
        "gradsync", lambda t, p: ["workload", "from-torch", f"{p}:net", "--input-shape", "2,8",
                                  "--out", "w.yaml"], "mymodel.py", "python", USER_MODEL),
    "run --model FILE.py:FACTORY": Entry(
        "gradsync", lambda t, p: ["run", "--model", f"{p}:net", "--batch", "4", "--steps", "2",
                                  "--out", "r"], "mymodel.py", "python", USER_MODEL),
    "python -m benchmarks.published --csv": Entry(
        "benchmarks.published", lambda t, p: ["--csv", p], "rows.csv", "csv", PUBLISHED,
        ("throughput", _csv_cell("throughput"))),
    "python -m benchmarks.overlap_gap --bsp-csv": Entry(
        "benchmarks.overlap_gap", lambda t, p: ["--bsp-csv", p], "rows.csv", "csv", PUBLISHED,
        ("throughput", _csv_cell("throughput"))),
    "python -m benchmarks.protocol_statistics": Entry(
        "benchmarks.protocol_statistics", lambda t, p: [p], "report.json", "json",
        lambda: json.dumps({"fit_set": [str(SYNTH[k]) for k in ("bench", "run", "run2")],
                            "held_out": [str(SYNTH["run2"])]}), folder="protocol",
        skip=("unknown key",)),     # the protocol's report.json holds more than it reads
    "python -m calibration.collfit --data": Entry(
        "calibration.collfit", lambda t, p: ["--check", "--data", p], "all_reduce_perf.log", "log", NCCL_LOG,
        ("time", _log_time), folder="data/abci-v100", excludes=("nan", "inf", "-1", "huge"),
        skipped_in_folder=True),
    "python -m executor.sequence": Entry(
        "executor.sequence", lambda t, p: [p], "runs.json", "json", RUNS),
    "python -m executor --data npz": Entry(
        "executor", lambda t, p: ["--model", "tiny-mlp", "--batch", "4", "--steps", "2",
                                  "--data", f"npz:{p}", "--out", "r"], "d.npz", "npz"),
}


# -- the faults -----------------------------------------------------------------------------
#: Each bad number as YAML and as CSV or log text writes it.
BAD_NUMBERS = {"nan": (".nan", "nan"), "inf": (".inf", "inf"), "-1": ("-1", "-1"),
               "0": ("0", "0"), "huge": ("1.0e+300", "1e300")}
ANY_FILE = ("missing", "a directory", "empty", "not UTF-8", "symlink loop", "unreadable")
BY_FORMAT = {"yaml": ("truncated", "a list", "unknown key"),
             "json": ("truncated", "a list", "unknown key"),
             "csv": ("truncated", "no header", "unknown column"),
             "log": ("truncated",),
             "npz": ("truncated",),
             "parquet": ("truncated",),
             "python": ("truncated",)}


def _valid(entry: Entry) -> str | bytes:
    return entry.valid() if callable(entry.valid) else entry.valid


def _truncated(entry: Entry) -> str | bytes:
    """The file cut off: YAML and JSON inside a flow mapping, a CSV or log inside a row."""
    text = _valid(entry)
    if entry.fmt == "parquet":
        return text[:len(text) // 2]
    if entry.fmt == "npz":
        import numpy as np
        buffer = io.BytesIO()
        np.savez(buffer, x=np.zeros((10, 4)), y=np.arange(10) % 2)
        return buffer.getvalue()[:300]
    if entry.fmt == "json":
        return text[:len(text) // 2]
    if entry.fmt == "yaml":
        cut = text.rfind("{", 0, len(text) * 2 // 3)     # inside a { ... } figure or layer
        return text[:cut + 6] if cut > 0 else text[:len(text) // 2] + "{"
    lines = text.splitlines(keepends=True)
    last = lines[-1] if not lines[-1].startswith("#") else next(
        ln for ln in reversed(lines) if ln.strip() and not ln.startswith("#"))
    keep = text[:text.rindex(last)] + last[:len(last) // 3]
    return keep


def _format_fault(entry: Entry, fault: str) -> str | bytes:
    text = _valid(entry)
    if fault == "truncated":
        return _truncated(entry)
    if fault == "a list":
        return "- 1\n- 2\n" if entry.fmt == "yaml" else "[1, 2]\n"
    if fault == "unknown key":
        if entry.fmt == "yaml":
            return text + "bandwith_typo: 3\n"
        value = json.loads(text)
        if isinstance(value, list):
            return json.dumps({"runs": value})
        return json.dumps({**value, "bandwith_typo": 3})
    if fault == "no header":
        return "\n".join(text.splitlines()[1:]) + "\n"
    if fault == "unknown column":
        lines = text.splitlines()
        return "\n".join([lines[0] + ",bandwith_typo", *(ln + ",3" for ln in lines[1:])]) + "\n"
    raise AssertionError(fault)


def make_input(entry: Entry, fault: str, tmp: Path) -> tuple[str, tuple[str, ...]]:
    """Write the bad input for ``entry``; (the path the entry is given, what its line names)."""
    if entry.setup:
        entry.setup(tmp)
    base = tmp / entry.folder if entry.folder else tmp
    base.mkdir(parents=True, exist_ok=True)
    path = base / entry.name
    valid = _valid(entry)           # before the fault replaces the file it may be read from
    if path.exists():
        path.unlink()
    given = str(tmp / entry.folder.split("/")[0]) if entry.folder else str(path)
    needles: tuple[str, ...] = (entry.name,)
    if fault == "missing":
        if entry.folder:
            given = str(tmp / "no-such-folder")
            needles = ("no-such-folder",)
        # else: the path is simply not written
    elif fault == "a directory":
        path.mkdir()
    elif fault == "symlink loop":
        os.symlink(base / (entry.name + ".b"), path)
        os.symlink(path, base / (entry.name + ".b"))
    elif fault.startswith("number "):
        field_name, put = entry.number
        value = fault.split(" ", 1)[1]
        data = put(valid, value)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data)
        needles = (entry.name, field_name)
    else:
        data: str | bytes = {"empty": "", "not UTF-8": b"\xff\xfe garbage\x00\n",
                             "unreadable": valid or "x\n"}.get(fault) \
            if fault in ("empty", "not UTF-8", "unreadable") else _format_fault(entry, fault)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data)
        if fault == "unreadable":
            path.chmod(0)
    if entry.skipped_in_folder and fault in ANY_FILE and fault != "missing":
        needles = (Path(entry.folder).name,)
    return given, needles


def cases() -> list[tuple[str, str]]:
    out = []
    for name, entry in ENTRIES.items():
        faults = [f for f in (*ANY_FILE, *BY_FORMAT[entry.fmt]) if f not in entry.skip]
        if entry.number:
            column = 0 if entry.fmt == "yaml" else 1
            faults += [f"number {BAD_NUMBERS[v][column]}" for v in entry.excludes]
        out += [(name, fault) for fault in faults]
    return out


@pytest.mark.parametrize("entry,fault", cases())
def test_bad_input_is_one_line_exit_2(tmp_path: Path, entry: str, fault: str) -> None:
    if fault == "unreadable" and os.geteuid() == 0:
        pytest.skip("root reads a chmod 000 file")
    spec = ENTRIES[entry]
    given, needles = make_input(spec, fault, tmp_path)
    argv = spec.argv(tmp_path, given)
    before = tree_digest(tmp_path)
    rc, _, err = run_entry(spec.main, argv, tmp_path)
    lines = err.strip().splitlines()
    assert "Traceback" not in err, err
    assert rc == 2, (argv, rc, err)
    assert len(lines) == 1, err
    for needle in needles:
        assert needle.lower() in lines[0].lower(), (needle, lines[0])
    assert tree_digest(tmp_path) == before, f"{argv} changed files"


#: Flags that name a file gradsync writes, not one it reads (their checks are
#: tests/test_bad_inputs.py's output-path cases).
OUTPUT_FLAGS = ("--out", "--write-bands")
_PATH_ARG = re.compile(r'add_argument\(\s*"([\w-]+)"(?=[^)]*type=Path)')


def test_every_file_reading_module_cli_is_walked() -> None:
    """A ``python -m`` module whose parser takes a path (an argument of ``type=Path``) must
    join ENTRIES, so that its bad input is checked; a new one fails here until it does."""
    walked = {e.main for e in ENTRIES.values()}
    readers = set()
    for folder in ("benchmarks", "calibration", "executor", "hwmodels"):
        for path in sorted((ROOT / folder).glob("*.py")):
            flags = [f for f in _PATH_ARG.findall(path.read_text()) if f not in OUTPUT_FLAGS]
            if flags:
                readers.add(f"{folder}.{path.stem}")
    assert len(readers) >= 4            # the pattern still finds them
    assert not readers - walked, f"file-reading module CLIs not walked: {readers - walked}"
    # The executor reads --data npz:FILE (a string, not a Path) in both of its entry points.
    assert {"executor", "gradsync"} <= walked


def _module_clis() -> list[str]:
    """Every ``python -m`` module under the four packages whose main builds a parser."""
    found = []
    for folder in ("benchmarks", "calibration", "executor", "hwmodels"):
        for path in sorted((ROOT / folder).glob("*.py")):
            if "OneLineParser(" in path.read_text():
                found.append(folder if path.stem == "__main__" else f"{folder}.{path.stem}")
    return found


def test_no_module_cli_builds_a_plain_argparse_parser() -> None:
    """argparse's own parser prints a usage block and the error: two lines or more."""
    plain = [str(p.relative_to(ROOT)) for folder in ("benchmarks", "calibration", "executor",
                                                     "hwmodels", "gradsync")
             for p in sorted((ROOT / folder).rglob("*.py"))
             if "argparse.ArgumentParser(" in p.read_text()]
    assert not plain, f"use vocab.argtypes.OneLineParser: {plain}"
    assert len(_module_clis()) >= 10


@pytest.mark.parametrize("module", _module_clis())
def test_a_module_clis_bad_usage_is_one_line(tmp_path: Path, module: str) -> None:
    """An unknown flag (or the required arguments it leaves out): one line naming the
    command, exit 2."""
    rc, _, err = run_entry(module, ["--no-such-flag"], tmp_path)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and f"python -m {module}: error:" in lines[0], err
