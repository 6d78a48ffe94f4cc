"""Per-rank trace recording (schema v1, ``source="exec"``) and periodic partial flushes.

What each row means (streams: ``compute`` for layer work and the update, ``comm`` for
collectives, ``host`` for waiting, data loading and checkpoints):

* ``forward`` and ``backward``: per parametric layer, **tiles** of the step. A step's forward
  rows tile the network's forward and its backward rows tile the backward, so the rows of
  one op add up to that phase's time and never overlap:

  - a layer's ``forward`` row runs from its forward pre-hook to the pre-hook of the next
    parametric layer that runs (in the order the pre-hooks actually fire in this step, not
    the order of the layer list), the last one's to the end of the network's forward
    (:meth:`Tracer.forward_ends`, called by the step loop);
  - the first ``backward`` row starts when ``loss.backward()`` is called
    (:meth:`Tracer.backward_begins`); each row ends when the last of its layer's parameters
    has its gradient accumulated (``register_post_accumulate_grad_hook``,
    :meth:`Tracer.grad_ready`), and the next row starts there.

  Work that belongs to no parametric layer (activations, pooling, a residual add, the
  strategy's polling in its hooks, a message's copy before it is posted) is thus counted in
  the row of the layer it runs next to, not between rows. One exception keeps rows from
  overlapping others: the strategy ends the open forward row before work it records as rows
  of its own (crossiter's wait and update before a layer, ``forward_begins(-1)``), so
  there the forward rows leave a gap;
* ``allreduce``: post to observed completion of one message (``bucket`` = message index);
* ``wait``: time blocked waiting for messages; ``update``: the optimizer step;
* ``data``, ``loss``, ``checkpoint``.

**Cost.** A tile boundary is one clock reading, and each layer has two a step (its forward
pre-hook, its last gradient), so recording adds no hook beyond those the strategy runs
anyway: no forward hook, no watch on the output's ``grad_fn`` (an earlier version timed each
layer's own forward and backward with both; the watch alone cost more than all the rest).
Where the strategy hooks a layer, the tracer adds nothing there: the strategy's
post-accumulate-grad hook calls :meth:`Tracer.grad_ready` (``attach(..., grad_hooks=False)``)
and its forward pre-hook calls :meth:`Tracer.forward_begins` (``forward_hooks=False``); a
strategy that does not (DDP) gets the tracer's own pre-hooks and gradient hooks, which call
the same methods. A boundary appends one small tuple ``(step, op code, layer index, start,
end)``; names, streams and the rest of the row are filled in at flush, by index from small
Arrow arrays (no pandas on the way). ``grad_ready`` runs once per parameter: it counts
down, and only a layer's last parameter reads the clock. The boundaries read the clock's raw counter (``time.perf_counter``, a C
function, no Python frame) rather than the aligned clock; the shift to aligned seconds is
added to all of a part's events at once. Evaluation forwards (``Tracer.paused``) record
nothing.

Periodically (:class:`PartSchedule`: once ``--trace-flush-s`` seconds, 1 by default, have
passed since the last part and at least ``--flush-every`` steps, 10, are done) the new rows
go to ``DIR/partial/rank-R-aA-K.parquet`` (A: attempt, K: part) (written to a temporary name
and renamed, so a crash never leaves a half-written part); :func:`merge_partials` turns the parts into the run's trace. On CUDA,
the boundaries are CUDA events recorded on the stream (the same code path: ``_stamp``
makes an event instead of reading the clock), resolved into times at the end of each step.

**Background parts.** Building a part's Arrow table and writing it took ~1.5-1.9 ms of CPU
every 10 steps on resnet18-ci between real steps (~1.3 % of a 13 ms step; half of that the
Parquet write, mostly a fixed cost per file): hence the time bound, which makes short steps
share a part (about one a second) and leaves slow ones at one per 10 steps. The training loop's periodic flush
(``flush(..., background=True)``) builds the table on the training thread and hands only the
write, which releases the GIL, to a writer thread (:class:`_PartWriter`); parts keep their
numbers and order (one thread, first in, first out). Building the table there too held the
GIL against the hooks for no gain. The thread saves wall time only where a core is idle
(the host of a GPU run, not 2 busy cores): in CPU time the write costs what it costs. Every
other flush (a checkpoint, the end of the run, a failure or interrupt) is synchronous: it
waits for the parts handed over before, then writes its own, so once it returns every row
recorded is on disk. An error in the writer is raised by the next flush or by
:meth:`Tracer.close`, once. A rank killed while a part is in the thread loses that part
only: the parts before it are whole files.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch import nn

from vocab.trace import COLUMNS, conform, write_trace

PARTIAL_DIR = "partial"
_HOOK_OPS = ("forward", "backward")     # op codes of hook events: index in this tuple
_FORWARD, _BACKWARD = 0, 1
_ARROW_TYPES = {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64()}
_SCHEMA = pa.schema([(name, _ARROW_TYPES[kind]) for name, kind in COLUMNS.items()])
# Constant columns of hook events, taken by index at flush.
_HOOK_OP_NAMES = pa.array(_HOOK_OPS, pa.string())
_EXEC, _COMPUTE = pa.array(["exec"], pa.string()), pa.array(["compute"], pa.string())
_NO_BUCKET, _NO_BYTES = pa.array([-1], pa.int64()), pa.array([0], pa.int64())

Layers = list[tuple[str, nn.Module, list[nn.Parameter]]]


class Tracer:
    """Records one rank's intervals; ``clock()`` is the aligned host clock in seconds.

    ``clock``: an :class:`executor.comm.Clock` (anything with ``now``, ``raw`` and
    ``shift_s``), whose raw counter the hooks read, with no Python frame per reading, and
    whose shift is added to the hook events at flush; or any callable returning seconds,
    read as it is (tests).
    """

    def __init__(self, run_id: str, rank: int, clock: Callable[[], float] | Any,
                 enabled: bool, cuda: bool = False, attempt: int = 0):
        if callable(clock):
            self.clock, raw, self._aligner = clock, clock, None
        else:
            self.clock, raw, self._aligner = clock.now, clock.raw, clock
        self.run_id, self.rank, self.enabled, self.cuda = run_id, rank, enabled, cuda
        self._raw = raw
        self._shift = self._aligner.shift_s if self._aligner is not None else 0.0
        self.step = 0
        self.attempt = attempt     # a resumed run writes its parts beside the earlier ones
        self.paused = False        # set while evaluating: no rows for test-set forwards
        self.rows: list[tuple] = []     # full v1 rows (iteration .. end_s) from record()
        self._events: list[tuple] = []  # hooks: (step, op code, layer, start, end), raw times

        self._cuda_events: list[tuple] = []   # the same with CUDA events, until end_step
        self._append = (self._cuda_events if cuda else self._events).append
        self._stamp = self._event if cuda else raw
        self._parts = 0
        self._writer = _PartWriter()
        # One flush at a time: the watchdog thread flushes a rank it is about to abort while
        # the training thread may be inside its own (part numbers, the writer's queue).
        self._flush_lock = threading.Lock()
        self._handles: list = []
        self._names: list[str] = []
        self._name_array: pa.Array | None = None   # _names as Arrow, for the flush
        self._sizes: list[int] = []
        # Per-step state. The tiles' open ends: the layer whose forward row is open (-1:
        # none) and its start; where the next backward row starts.
        self._fwd_layer = -1
        self._fwd_t: Any = None
        self._bwd_t: Any = None
        self._left: list[int] = []      # per layer: parameters still without a gradient

    def record(self, iteration: int, stream: str, op: str, name: str, start_s: float,
               end_s: float, bucket: int = -1, nbytes: int = 0) -> None:
        """Add one interval (the runtime's callback)."""
        self.rows.append((iteration, self.rank, stream, op, name, bucket, nbytes,
                          start_s, end_s))

    def attach(self, layers: Layers, grad_hooks: bool = True,
               forward_hooks: bool = True) -> None:
        """Hook the layer boundaries of every parametric layer.

        ``grad_hooks=False``: the strategy calls :meth:`grad_ready` from its own
        post-accumulate-grad hook (first, so a layer's row ends before its message is posted)
        and no second hook per parameter is registered. ``forward_hooks=False``: the strategy
        calls :meth:`forward_begins` at the end of its own forward pre-hook of each layer and
        the tracer registers no forward hook at all; otherwise it registers a forward
        pre-hook per layer that does just that (attach it after the strategy's pre-hooks).
        """
        if not self.enabled:
            return
        self._names = [name for name, _, _ in layers]
        self._name_array = pa.array(self._names, type=pa.string())   # read by the writer
        self._sizes = [len(params) for _, _, params in layers]
        self._left[:] = self._sizes
        for i, (_, module, params) in enumerate(layers):
            if forward_hooks:
                self._handles.append(module.register_forward_pre_hook(self._fwd_pre(i)))
            if grad_hooks:
                hook = self._grad_hook(i)
                self._handles.extend(p.register_post_accumulate_grad_hook(hook)
                                     for p in params)

    def begin_step(self, step: int) -> None:
        """Start of ``step``: reset the per-step bookkeeping (before its forward)."""
        self.step = step
        if not self.enabled:
            return
        self._follow_shift()
        self._left[:] = self._sizes
        self._fwd_layer = -1
        if self.cuda:
            self._host0 = self._raw()
            self._ev0 = self._bwd_t = self._event()
        else:
            # Where the first backward row starts if backward_begins is never called.
            self._bwd_t = self._raw()

    def _follow_shift(self) -> None:
        """Keep the stored events' raw times valid for the clock's current shift (it changes
        only when the clock is aligned, before the first step; then this rebases them)."""
        shift = self._aligner.shift_s if self._aligner is not None else 0.0
        if shift != self._shift:
            d = self._shift - shift
            self._events[:] = [(s, o, la, a + d, b + d) for s, o, la, a, b in self._events]
            self._shift = shift

    def end_step(self) -> None:
        """End of a step: on CUDA, resolve the step's events into times."""
        if not self._cuda_events:
            return
        torch.cuda.synchronize()
        host0, ev0 = self._host0, self._ev0
        for step, op, layer, start, end in self._cuda_events:
            self._events.append((step, op, layer, host0 + ev0.elapsed_time(start) / 1e3,
                                 host0 + ev0.elapsed_time(end) / 1e3))
        self._cuda_events.clear()

    # -- the tile boundaries: each reads the clock once ------------------------------------
    def forward_begins(self, layer: int) -> None:
        """``layer``'s forward starts now, and the forward row open until now ends (a
        strategy's forward pre-hook calls this, or the tracer's own). ``layer = -1``: the
        open row ends and none starts (the strategy's work before a layer that has rows of
        its own, crossiter's wait and update, stays out of the forward rows)."""
        if self.paused:
            return
        now = self._stamp()
        last = self._fwd_layer
        if last >= 0:
            self._append((self.step, _FORWARD, last, self._fwd_t, now))
        self._fwd_layer = layer
        self._fwd_t = now

    def forward_ends(self) -> None:
        """The network's forward is over: the last layer's forward row ends now (the step
        loop calls this once the model has returned)."""
        now = self._stamp()
        last = self._fwd_layer
        if last >= 0:
            self._append((self.step, _FORWARD, last, self._fwd_t, now))
        self._fwd_layer = -1
        self._bwd_t = now

    def backward_begins(self) -> None:
        """``loss.backward()`` is called now: the first backward row starts here. A forward
        row still open (no :meth:`forward_ends`) ends here too."""
        if self._fwd_layer >= 0:
            self.forward_ends()
        self._bwd_t = self._stamp()

    def grad_ready(self, layer: int) -> None:
        """One parameter of ``layer`` has its gradient accumulated; the last one ends the
        layer's backward row, which started where the previous one ended (a strategy's
        post-accumulate-grad hook calls this, or the tracer's own: once per parameter)."""
        left = self._left
        n = left[layer] - 1
        left[layer] = n
        if n == 0:
            end = self._stamp()
            self._append((self.step, _BACKWARD, layer, self._bwd_t, end))
            self._bwd_t = end

    @staticmethod
    def _event():
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    # -- the tracer's own hooks (strategies that do not report), built once per layer -----
    def _fwd_pre(self, i: int) -> Callable:
        begins = self.forward_begins

        def hook(module: nn.Module, args: tuple) -> None:
            begins(i)
        return hook

    def _grad_hook(self, i: int) -> Callable:
        grad_ready = self.grad_ready

        def hook(param: torch.Tensor) -> None:
            grad_ready(i)
        return hook

    # -- output ----------------------------------------------------------------------------
    def _table(self, rows: list[tuple], events: list[tuple], shift: float) -> pa.Table | None:
        """``rows`` (from :meth:`record`) then ``events`` (from the hooks, raw times plus
        ``shift``) as an Arrow table of the v1 columns; ``None`` when both are empty."""
        if not rows and not events:
            return None
        parts = []
        if rows:
            iteration, _, stream, op, name, bucket, nbytes, start, end = map(list, zip(*rows))
            n = len(rows)
            parts.append(_table_of([[self.run_id] * n, ["exec"] * n, iteration,
                                    [self.rank] * n, stream, op, name, bucket, nbytes, start,
                                    end]))
        if events:
            parts.append(self._events_table(events, shift))
        return parts[0] if len(parts) == 1 else pa.concat_tables(parts)

    def _events_table(self, events: list[tuple], shift: float) -> pa.Table:
        """The hook events as v1 columns. Thousands of them per flush: names and constants are
        taken from small Arrow arrays by index rather than built as Python lists."""
        step, op, layer, start, end = zip(*events)
        start, end = np.array(start) + shift, np.array(end) + shift
        zeros = pa.array(np.zeros(len(events), dtype=np.int32))
        return pa.Table.from_arrays([
            pa.array([self.run_id], pa.string()).take(zeros),
            _EXEC.take(zeros), pa.array(step, pa.int64()),
            pa.array([self.rank], pa.int64()).take(zeros), _COMPUTE.take(zeros),
            _HOOK_OP_NAMES.take(pa.array(op, pa.int32())),
            self._name_array.take(pa.array(layer, pa.int32())), _NO_BUCKET.take(zeros),
            _NO_BYTES.take(zeros), pa.array(start, pa.float64()), pa.array(end, pa.float64())],
            schema=_SCHEMA)

    def flush(self, out_dir: Path, background: bool = False) -> None:
        """Write the rows recorded since the last flush as this rank's next partial part.

        The part's Arrow table is built here. ``background=True`` (the periodic flush): the
        table goes to the writer thread and this returns at once. Otherwise first wait for
        the parts handed over before, then write this one here: on return every recorded row
        is on disk. Either way an error the writer met since the last flush is raised (after
        this flush's rows are written or handed over).
        """
        with self._flush_lock:
            self._flush(out_dir, background)

    def _flush(self, out_dir: Path, background: bool) -> None:
        self._follow_shift()
        # Taken, not cleared after the table is built: a row the training thread appends
        # meanwhile (the watchdog's flush runs beside it) stays for the next part.
        table = self._table(take_all(self.rows), take_all(self._events), self._shift)
        job = None
        if table is not None:
            folder = Path(out_dir) / PARTIAL_DIR
            path = folder / f"rank-{self.rank:04d}-a{self.attempt:02d}-{self._parts:05d}.parquet"
            self._parts += 1

            def job() -> None:
                _write_part(table, path)
        if background and job is not None:
            self._writer.submit(job)
            self._writer.raise_error()
            return
        error = self._writer.wait()
        if job is not None:
            job()
        if error is not None:
            raise error

    def frame(self) -> pd.DataFrame:
        """The rows recorded since the last flush as a v1 DataFrame."""
        self._follow_shift()
        table = self._table(self.rows, self._events, self._shift)
        return conform(table.to_pandas() if table is not None
                       else pd.DataFrame(columns=list(COLUMNS)))

    def close(self) -> None:
        """Remove the hooks; wait for the writer thread (raising an error it met) and end it."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        error = self._writer.close()
        if error is not None:
            raise error


class PartSchedule:
    """When the training loop writes its next periodic part: once ``every_s`` seconds have
    passed since the last part *and* at least ``every_steps`` steps are done since it.

    Short steps are flushed by time (one part per ``every_s``: the per-file cost stops
    growing with the step rate); slow steps by steps (``every_steps``, ``--flush-every``:
    10 by default, the spacing before the time bound, so a run of 2 s steps keeps one part
    per 10 steps and its file count). ``every_s = 0`` is the step rule alone. Any part resets
    the count (:meth:`written`), checkpoints' and the watchdog's too. ``clock``: seconds,
    monotonic (a fake one in tests, a side's own time in ``benchmarks.exec_overhead``).
    """

    def __init__(self, every_steps: int, every_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.every_steps = every_steps
        self.every_s = every_s
        self.clock = clock
        self.steps_done = 0         # steps done when the last part was written
        self.since = clock()        # when it was written (or the schedule started)

    def due(self, steps_done: int) -> bool:
        """True when a part should be written now, ``steps_done`` steps into the run."""
        return (steps_done - self.steps_done >= self.every_steps
                and self.clock() - self.since >= self.every_s)

    def written(self, steps_done: int) -> None:
        """A part was just written, or the run (re)starts: count from here."""
        self.steps_done = steps_done
        self.since = self.clock()


class _PartWriter:
    """One daemon thread that runs part-writing jobs in the order they were submitted; the
    first error a job raises is kept for :meth:`raise_error`, :meth:`wait` or :meth:`close`
    (the jobs after it still run: each writes its own part). Started at the first submit."""

    def __init__(self) -> None:
        self._jobs: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, job: Callable[[], None]) -> None:
        """Queue ``job`` behind those submitted before."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="trace-writer", daemon=True)
            self._thread.start()
        self._jobs.put(job)

    def wait(self) -> BaseException | None:
        """Block until every submitted job has run; return (and forget) the error kept."""
        if self._thread is not None:
            self._jobs.join()
        error, self._error = self._error, None
        return error

    def raise_error(self) -> None:
        """Raise (once) an error a finished job raised, without waiting for the others."""
        error, self._error = self._error, None
        if error is not None:
            raise error

    def close(self) -> BaseException | None:
        """:meth:`wait`, then end the thread."""
        error = self.wait()
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None
        return error

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except BaseException as exc:  # noqa: BLE001 - handed to the training thread
                if self._error is None:
                    self._error = exc
            finally:
                self._jobs.task_done()
        self._jobs.task_done()


def take_all(buffer: list) -> list:
    """The items in ``buffer`` now, removed from it, without a lock on the appending side.

    ``buffer[:n]`` and ``del buffer[:n]`` are each one list operation, atomic under the GIL
    (and under free-threaded CPython's per-list lock), and another thread's ``append`` lands
    past ``n``: an item appended while this runs is neither lost nor taken twice. The same
    list object stays in place (the hooks hold its bound ``append``)."""
    n = len(buffer)
    taken = buffer[:n]
    del buffer[:n]
    return taken


def _write_part(table: pa.Table, path: Path) -> None:
    """``table`` to ``path`` through a temporary name, so a reader never sees half a part.
    Parts are transient (merged into trace.parquet at the end): written plain, fast, into
    an open file (no filesystem resolution per part)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with pa.OSFile(str(tmp), "wb") as sink:
        pq.write_table(table, sink, compression="none", write_statistics=False,
                       use_dictionary=False)
    os.replace(tmp, path)


def _table_of(columns: list[list]) -> pa.Table:
    """Python lists of the v1 columns as an Arrow table."""
    return pa.Table.from_arrays([pa.array(c, type=f.type) for c, f in zip(columns, _SCHEMA)],
                                schema=_SCHEMA)


def merge_partials(out_dir: Path, drop_from_step: int | None = None) -> pd.DataFrame | None:
    """Every rank's partial parts as one frame (``None`` when there are none); rows of
    iterations ``>= drop_from_step`` are dropped (a resumed run redoes them)."""
    parts = sorted((Path(out_dir) / PARTIAL_DIR).glob("rank-*.parquet"))
    if not parts:
        return None
    frame = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    if drop_from_step is not None:
        frame = frame[frame["iteration"] < drop_from_step]
    return conform(frame.sort_values(["rank", "start_s"], kind="stable"))


def write_partial_trace(out_dir: Path) -> Path | None:
    """Merge the partial parts into ``DIR/trace.parquet`` (after a failed run)."""
    frame = merge_partials(out_dir)
    return None if frame is None else write_trace(frame, out_dir)
