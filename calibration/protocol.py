"""The held-out protocol, end to end on this machine: measure, fit on little, predict the rest.

``python -m calibration.protocol --out DIR`` (or ``gradsync calibrate --protocol --out DIR``):

1. ``bench-net`` on 2 and 4 ranks (collectives, overlap test, core sharing);
2. per-layer compute profiles of every model: a one-rank executor run pinned to one core (one
   torch thread, as every rank of a 2- or 4-rank run on this machine uses), and at each rank
   count an executor run with ``--local`` (the ranks placed and threaded as in a real run, but
   exchanging no gradients: compute as it is when that many ranks share the cores and caches);
3. the fit runs: ``sync`` of one model (``FIT_MODEL``) on 2 ranks, launched in every block
   (see :class:`Blocks`);
4. ``calibrate`` on 1-3 only;
5. the held-out runs: every model x every strategy x 2 and 4 ranks except the fit setup (other
   models, other strategies including ``delayed`` and ``bucketed``, another rank count), each
   setup launched twice and predicted by ``validate`` (the median of its launches is its
   measured time); report, JSON and plot in ``DIR``.

Measurement hygiene (the machine is shared): every measurement runs under
:class:`calibration.hostload.ForeignLoad`, after waiting briefly for the machine to go quiet;
one during which other programs used more than ``MAX_FOREIGN`` of the machine is repeated
later (up to ``ATTEMPTS`` times, while the time budget lasts) and the cleanest attempt is
kept. Each run's foreign share is written beside it (``protocol.json``) and into the report.

Executor runs are launched as subprocesses (``mpiexec -n N python -m executor ...``), each
with a timeout; calibration never imports the executor. ``one_job`` (the notebook's small
size) runs each block as one MPI job instead (``python -m executor.sequence``): see
:class:`Blocks`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from calibration.benchnet import read_bench, run_bench_net
from calibration.calibrate import calibrate
from calibration.hostload import ForeignLoad, wait_for_quiet
from calibration.runs import RunError
from calibration.validate import Report, plot, validate
from vocab.outpath import check_output, write_text_atomic
from vocab.jobs import run_checked
from vocab.mpiexec import mpiexec_command, python_argv
from vocab.argtypes import OneLineParser, real, whole

DEFAULT_OUT = "calibration-protocol"
MODELS = ("resnet18-ci", "alexnet-ci", "bert-ci")
FIT_MODEL = "resnet18-ci"
STRATEGIES = ("sync", "layerwise", "bucketed", "delayed")
RANKS = (2, 4)
#: Per-rank batches: one step of each model takes 20-70 ms on one core here, far above timer
#: noise and the executor's per-step costs, yet keeps the whole protocol within minutes.
BATCH = {"resnet18-ci": 96, "alexnet-ci": 32, "bert-ci": 32}
DEFAULT_BATCH = 32
STEPS = 24
RUN_TIMEOUT_S = 240.0
#: Bench-net message range: the protocol's messages are 0.1-3 MB; the fit uses up to 4x that.
BENCH_SIZES = "4B..16MiB"
BENCH_REPEATS = 7
#: A measurement during which other programs used more than this share of the machine is
#: repeated (see the module docstring).
MAX_FOREIGN = 0.10
ATTEMPTS = 3
QUIET_WAIT_S = 10.0
#: Retries and waits for quiet stop once the protocol has run this long (the whole must stay
#: under 15 minutes).
RETRY_BUDGET_S = 600.0
HYGIENE_FILE = "protocol.json"


@dataclass
class Hygiene:
    """The noise guard's settings and what it saw: foreign share per measurement."""

    max_foreign: float = MAX_FOREIGN
    attempts: int = ATTEMPTS
    quiet_wait_s: float = QUIET_WAIT_S
    retry_budget_s: float = RETRY_BUDGET_S
    started: float = field(default_factory=time.perf_counter)
    seen: dict[str, list[float]] = field(default_factory=dict)

    def measure(self, name: str, attempt: Callable[[], None]) -> float:
        """Run ``attempt`` under the guard; returns the foreign share it saw."""
        if self.quiet_wait_s > 0 and self.elapsed_s < self.retry_budget_s:
            wait_for_quiet(self.quiet_wait_s)
        with ForeignLoad() as load:
            attempt()
        self.seen.setdefault(name, []).append(round(load.share, 4))
        return load.share

    def retry(self, share: float, tries: int) -> bool:
        """Whether a measurement with ``share`` deserves another attempt."""
        return (share > self.max_foreign and tries < self.attempts
                and self.elapsed_s < self.retry_budget_s)

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started


def executor_command(nranks: int, model: str, strategy: str, batch: int, steps: int,
                     out: Path, local: bool = False) -> list[str]:
    """The executor's command line (every rank runs ``python -m executor``)."""
    return mpiexec_command(nranks, python_argv(
        "executor", *executor_argv(model, strategy, batch, steps, out, local)))


def executor_argv(model: str, strategy: str, batch: int, steps: int, out: Path,
                  local: bool = False) -> list[str]:
    """One run's arguments of ``python -m executor`` (and of a line of a sequence)."""
    return ["--model", model, "--strategy", strategy, "--batch", str(batch), "--steps",
            str(steps), "--data", "synthetic", "--out", str(out), *(["--local"] if local else [])]


def run_executor_job(nranks: int, runs: list[list[str]], runs_file: Path,
                     timeout_s: float = RUN_TIMEOUT_S) -> None:
    """Several executor runs (argument lists of :func:`executor_argv`) in one MPI job of
    ``nranks`` (``python -m executor.sequence``); ``timeout_s`` per run."""
    write_text_atomic(runs_file, json.dumps(runs, indent=1) + "\n")
    _run(mpiexec_command(nranks, python_argv("executor.sequence", str(runs_file))),
         f"executor job {runs_file.stem} ({len(runs)} runs)", timeout_s * len(runs))


def _run(command: list[str], what: str, timeout_s: float,
         preexec_fn: Callable[[], None] | None = None) -> None:
    done = run_checked(command, what, timeout_s=timeout_s, preexec_fn=preexec_fn,
                       env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if done.timed_out:
        raise RunError(f"{what} took longer than {timeout_s:.0f} s")
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RunError(f"{what} failed (exit {done.returncode}): {tail[0]}")


def run_executor(nranks: int, model: str, strategy: str, batch: int, out: Path,
                 steps: int = STEPS, timeout_s: float = RUN_TIMEOUT_S,
                 local: bool = False) -> Path:
    """One executor run into ``out`` (reused when it already finished there); ``local``: the
    ranks exchange no gradients (a compute profile at this rank count)."""
    if (out / "trace.parquet").exists():
        return out
    _run(executor_command(nranks, model, strategy, batch, steps, out, local),
         f"executor run {out.name}", timeout_s)
    return out


def guarded(out: Path, hygiene: Hygiene, make: Callable[[Path], None]) -> Path:
    """Make ``out`` with ``make(path)`` under the noise guard, repeating a disturbed attempt
    into ``out.tryK`` and keeping the cleanest attempt at ``out``."""
    return guarded_job([out], hygiene, lambda paths: make(paths[out]), out.name)[0]


def guarded_job(outs: list[Path], hygiene: Hygiene,
                make: Callable[[dict[Path, Path]], None], name: str) -> list[Path]:
    """Make the directories ``outs`` together (one measurement named ``name``: ``make(paths)``
    makes every ``paths[out]``, e.g. one MPI job running several runs) under the noise guard;
    a disturbed attempt is repeated as a whole into ``OUT.tryK`` and the cleanest attempt kept
    at ``outs``. Each directory's ``protocol.json`` records the share, the attempts and, for a
    job of several, the runs it was measured with. Directories already recorded are not
    remade (a job cut short is resumed: ``make`` skips the runs that finished)."""
    pending = [out for out in outs if not (out / HYGIENE_FILE).exists()]
    if not pending:
        return outs
    best: tuple[float, dict[Path, Path]] | None = None
    for tries in range(1, hygiene.attempts + 1):
        paths = {out: out if tries == 1 else out.with_name(f"{out.name}.try{tries}")
                 for out in pending}
        share = hygiene.measure(name, lambda paths=paths: make(paths))
        if best is None or share < best[0]:
            best = (share, paths)
        if not hygiene.retry(share, tries):
            break
    share, paths = best
    together = {"job": [out.name for out in pending]} if len(pending) > 1 else {}
    for out, path in paths.items():
        if path != out:
            _swap(out, path)
        write_text_atomic(out / HYGIENE_FILE, json.dumps(
            {"foreign_share": share, "attempts": hygiene.seen[name], **together}) + "\n")
    return outs


def _swap(out: Path, better: Path) -> None:
    """Put the directory or file ``better`` at ``out`` (the first attempt moves aside)."""
    aside = out.with_name(out.name + ".disturbed")
    if aside.is_dir():
        shutil.rmtree(aside)
    if out.exists():            # an attempt that failed early may have left nothing there
        os.replace(out, aside)
    os.replace(better, out)


def pinned_to_one_core() -> None:
    """``preexec_fn``: run the child (and what it starts) on one core, the last one. The
    executor gives each rank the cores it may use divided among the node's ranks, so a
    one-rank run pinned to one core computes on one torch thread, as the ranks of 2- and
    4-rank runs on 2 cores do."""
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cores[-1]})


def run_profile(model: str, batch: int, out: Path, steps: int = STEPS,
                timeout_s: float = RUN_TIMEOUT_S) -> Path:
    """A compute-profile run: the executor on one rank pinned to one core (no communication;
    the per-layer times of the very code path the ranks run, hooks and data included)."""
    if (out / "trace.parquet").exists():
        return out
    _run(executor_command(1, model, "sync", batch, steps, out), f"profile run {out.name}",
         timeout_s, preexec_fn=pinned_to_one_core)
    return out


@dataclass
class Blocks:
    """The protocol's executor runs, block by block (one model at one rank count), and which
    of them are profiles, fit runs and held-out runs.

    A block is time-symmetric: the ``--local`` profile, the strategies, the strategies again
    in reverse order (each held-out setup is launched twice), the profile again. Outside the
    fit model's own blocks, a fit pair (the fit model's ``--local`` profile and its ``sync``
    run) opens the block at the fit rank count. The machine's speed drifts over minutes: a
    profile is compared with runs near it in time, and the fit runs span the whole protocol.

    With ``one_job`` a block's runs are one MPI job (``python -m executor.sequence``), in
    the same order and each the same run as a job of its own, with one noise-guard
    measurement for the block (a disturbed block is repeated whole). What changes: the
    processes start once per block (on 2 cores most of a short run's cost is starting
    Python, torch and MPI), and a block's later runs find the process warm (its warm-up
    steps are excluded from every run's time either way); the two launches of a setup are
    then two runs in one process, not two processes.
    """

    runs_dir: Path
    hygiene: Hygiene
    say: Callable[[str], None]
    batch_of: dict[str, int]
    fit_model: str
    fit_ranks: int
    steps: int
    one_job: bool = False
    profiles: list[Path] = field(default_factory=list)
    fit_runs: list[Path] = field(default_factory=list)
    held_out: list[Path] = field(default_factory=list)

    def measure(self, name: str, make: Callable[[Path], Path]) -> Path:
        self.say(name)
        return guarded(self.runs_dir / name, self.hygiene, make)

    def batch(self, model: str) -> int:
        return self.batch_of.get(model, DEFAULT_BATCH)

    def profile_alone(self, model: str) -> None:
        """The one-rank profile, pinned to one core (what-if at other rank counts uses it)."""
        self.profiles.append(self.measure(f"{model}-n1", lambda d: run_profile(
            model, self.batch(model), d, self.steps)))

    def block(self, model: str, p: int, strategies: Sequence[str]) -> None:
        """One model's runs at ``p`` ranks, in the time-symmetric order of the class
        docstring: each as its own MPI job, or with ``one_job`` all in one."""
        fit = self.fit_model
        entries = [(f"{model}-local-n{p}", model, "sync", True, self.profiles)]
        if p == self.fit_ranks and model != fit:
            entries += [(f"{fit}-local-n{p}-with-{model}", fit, "sync", True, self.profiles),
                        (f"{fit}-sync-n{p}-with-{model}", fit, "sync", False, self.fit_runs)]
        for repeat, order in ((1, strategies), (2, strategies[::-1])):
            for strategy in order:
                name = f"{model}-{strategy}-n{p}" + ("" if repeat == 1 else f"-r{repeat}")
                is_fit = model == fit and strategy == "sync" and p == self.fit_ranks
                entries.append((name, model, strategy, False,
                                self.fit_runs if is_fit else self.held_out))
        entries.append((f"{model}-local-n{p}-r2", model, "sync", True, self.profiles))
        if self.one_job:
            paths = self.job(f"{model}-n{p}-job", p, entries)
        else:
            paths = [self.measure(name, lambda d, m=m, s=s, local=local: run_executor(
                p, m, s, self.batch(m), d, self.steps, local=local))
                for name, m, s, local, _ in entries]
        for (*_, role), path in zip(entries, paths):
            role.append(path)

    def job(self, name: str, p: int, entries: list) -> list[Path]:
        """The block's runs as one MPI job (``python -m executor.sequence``), one
        measurement of the noise guard; runs finished earlier are not run again."""
        self.say(f"{name}: {len(entries)} runs in one MPI job")
        outs = [self.runs_dir / entry[0] for entry in entries]
        by_out = dict(zip(outs, entries))

        def make(paths: dict[Path, Path]) -> None:
            todo = []
            for out, path in paths.items():
                _, model, strategy, local, _ = by_out[out]
                if not (path / "trace.parquet").exists():
                    todo.append(executor_argv(model, strategy, self.batch(model), self.steps,
                                              path, local))
            if todo:
                self.runs_dir.mkdir(parents=True, exist_ok=True)
                run_executor_job(p, todo, self.runs_dir / f"{name}.json")

        return guarded_job(outs, self.hygiene, make, name)


def run_protocol(out: Path, models: Sequence[str] = MODELS, fit_model: str = FIT_MODEL,
                 strategies: Sequence[str] = STRATEGIES, ranks: Sequence[int] = RANKS,
                 steps: int = STEPS, log=print, batches: dict[str, int] | None = None,
                 hygiene: Hygiene | None = None, bench_sizes: str = BENCH_SIZES,
                 bench_repeats: int = BENCH_REPEATS, overwrite: bool = False,
                 one_job: bool = False) -> Report:
    """Run the whole protocol into ``out``; returns the validation report of held-out runs.

    ``one_job``: each block's runs (one model at one rank count) in one MPI job, one
    measurement of the noise guard, instead of one job per run (see :class:`Blocks`).

    ``out`` must be new, empty, or an earlier protocol's folder (resumed: finished steps
    are kept); any other non-empty folder is refused unless ``overwrite``."""
    claim_protocol_dir(out, overwrite)
    hygiene = hygiene or Hygiene()
    started = hygiene.started
    batch_of = {**BATCH, **(batches or {})}

    def say(text: str) -> None:
        log(f"[{time.perf_counter() - started:6.0f} s] {text}")

    benches = []
    for p in ranks:
        say(f"bench-net -n {p}")
        path = out / f"bench-n{p}"
        if not (path / "bench.csv").exists():
            path = guarded(path, hygiene, lambda d, p=p: run_bench_net(  # its own folder
                p, d, sizes=bench_sizes, repeats=bench_repeats, overwrite=True))
        read_bench(path)
        benches.append(path)
    plan = Blocks(out / "runs", hygiene, say, batch_of, fit_model, min(ranks), steps, one_job)
    for model in models:
        plan.profile_alone(model)
        for p in ranks:
            plan.block(model, p, strategies)
    profiles, fit_runs, held_out = plan.profiles, plan.fit_runs, plan.held_out
    fitted = out / "fitted.yaml"
    say(f"calibrate on {len(benches)} benchmarks, {len(profiles)} profile runs, "
        f"{len(fit_runs)} fit run(s)")
    calibrate([*benches, *profiles, *fit_runs], fitted, overwrite=True)
    report = validate(fitted, held_out)
    plot(report, out / "predicted_vs_measured.png", overwrite=True)   # this protocol's own
    wall_s = time.perf_counter() - started
    _write_summary(out, report, wall_s, benches, profiles, fit_runs, held_out, hygiene)
    say("done")
    return report


#: The file that marks a folder as a protocol's own (so it may be resumed there).
PROTOCOL_MARK = ".gradsync-protocol"


#: What a protocol folder holds (an earlier, interrupted protocol is resumed there; bench-net
#: directories made beforehand are reused).
_PROTOCOL_ENTRIES = re.compile(r"(bench-n\d+.*|runs|fitted\.yaml|report\.(json|txt)|"
                               r"predicted_vs_measured\.png|\.gradsync-protocol|\..*\.tmp)")


def claim_protocol_dir(out: Path, overwrite: bool = False) -> None:
    """Refuse a folder that holds anything but a protocol's own files (the user's data is
    never mixed with the protocol's); then mark it ours."""
    out = Path(out)
    foreign = out.is_dir() and any(not _PROTOCOL_ENTRIES.fullmatch(entry.name)
                                   for entry in out.iterdir())
    if foreign or not out.is_dir():
        check_output(out, overwrite=overwrite, kind="dir")
    out.mkdir(parents=True, exist_ok=True)
    (out / PROTOCOL_MARK).write_text("a gradsync calibrate --protocol folder (resumable)\n")


def _write_summary(out: Path, report: Report, wall_s: float, benches: list[Path],
                   profiles: list, fit_runs: list[Path], held_out: list[Path],
                   hygiene: Hygiene) -> None:
    """``report.json`` (the validate JSON plus how it was made) and ``report.txt``."""
    shares = {name: min(seen) for name, seen in hygiene.seen.items()}
    summary = {**report.to_json(), "wall_s": wall_s,
               "command": f"python -m calibration.protocol --out {out}",
               "fit_set": [str(p) for p in [*benches, *profiles, *fit_runs]],
               "held_out": [str(p) for p in held_out],
               "load": {"loadavg_at_end": os.getloadavg(), "cores": os.cpu_count(),
                        "max_foreign": hygiene.max_foreign,
                        "foreign_share": shares, "attempts": hygiene.seen}}
    write_text_atomic(out / "report.json", json.dumps(summary, indent=2) + "\n")
    worst = max(shares.values(), default=0.0)
    typical = statistics.median(shares.values() or [0.0])
    write_text_atomic(
        out / "report.txt", report.table() + f"\nwall time {wall_s:.0f} s; other programs' share of the machine "
        f"during the kept measurements: median {typical:.2f}, "
        f"max {worst:.2f}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m calibration.protocol``."""
    parser = OneLineParser(prog="python -m calibration.protocol", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--fit-model", default=FIT_MODEL)
    parser.add_argument("--steps", type=whole(4, 10_000, what="steps per run"), default=STEPS)
    parser.add_argument("--max-foreign", type=real(0, 1, what="share of the machine"),
                        default=MAX_FOREIGN,
                        help="repeat a measurement when other programs used more than this "
                             "share of the machine (default %(default)s)")
    args = parser.parse_args(argv)
    report = run_protocol(Path(args.out), args.models.split(","), args.fit_model,
                          steps=args.steps, hygiene=Hygiene(max_foreign=args.max_foreign))
    print(report.table())
    print((Path(args.out) / "report.txt").read_text().splitlines()[-1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
