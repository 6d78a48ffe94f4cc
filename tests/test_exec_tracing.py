"""The executor's tracer in one process: which rows its hooks write, and its partial parts."""

from __future__ import annotations

import itertools
import time

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from executor.models import parametric_layers  # noqa: E402
from executor.tracing import PartSchedule, Tracer, merge_partials  # noqa: E402
from vocab.trace import COLUMNS  # noqa: E402


def make_model() -> nn.Module:
    torch.manual_seed(0)
    # In-place ReLU after a layer: the case module full backward hooks break.
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(inplace=True), nn.Linear(16, 16),
                         nn.BatchNorm1d(16), nn.ReLU(inplace=True), nn.Linear(16, 3))


def traced_step(tracer: Tracer, model: nn.Module, step: int, marks: dict | None = None,
                x=None, y=None) -> None:
    """One step as executor.train.run_step drives the tracer; ``marks`` (if given) gets the
    clock read just before the forward, after it, before the backward and after it."""
    x = torch.randn(4, 8) if x is None else x
    y = torch.tensor([0, 1, 2, 0]) if y is None else y
    read = tracer._raw
    tracer.begin_step(step)
    model.zero_grad(set_to_none=True)
    t0 = read()
    out = model(x)
    tracer.forward_ends()
    t1 = read()
    loss = nn.functional.cross_entropy(out, y)
    t2 = read()
    tracer.backward_begins()
    loss.backward()
    t3 = read()
    tracer.end_step()
    tracer.record(step, "compute", "update", "update", 1.0 + step, 1.5 + step)
    if marks is not None:
        marks[step] = (t0, t1, t2, t3)


def traced_rows(tracer: Tracer, model: nn.Module, steps: int = 3, **data) -> list[tuple]:
    """``steps`` traced steps; per step its four clock marks (:func:`traced_step`) and its
    forward and backward rows."""
    marks: dict = {}
    for step in range(steps):
        traced_step(tracer, model, step, marks, **data)
    frame = tracer.frame()
    return [(marks[step], step_rows(frame, step, "forward"), step_rows(frame, step, "backward"))
            for step in sorted(marks)]


def assert_step_tiles(marks: tuple, forward, backward) -> None:
    """Each phase's rows tile it, between the clock readings taken around that phase."""
    t0, t1, t2, t3 = marks
    assert_tiles(forward, forward["start_s"].iloc[0], forward["end_s"].iloc[-1])
    assert t0 < forward["start_s"].iloc[0] and forward["end_s"].iloc[-1] < t1
    assert_tiles(backward, backward["start_s"].iloc[0], backward["end_s"].iloc[-1])
    assert t2 < backward["start_s"].iloc[0] and backward["end_s"].iloc[-1] < t3


def run_steps(tracer: Tracer, model: nn.Module, steps: int) -> None:
    for step in range(steps):
        traced_step(tracer, model, step)


def counting_clock():
    ticks = itertools.count()
    return lambda: float(next(ticks))


def test_one_forward_and_one_backward_row_per_layer_and_step(tmp_path):
    model = make_model()
    tracer = Tracer("run", 3, counting_clock(), True)
    tracer.attach(parametric_layers(model))
    run_steps(tracer, model, 2)
    frame = tracer.frame()
    assert list(frame.columns) == list(COLUMNS)
    names = ["0", "2", "3", "5"]
    for step in (0, 1):
        rows = frame[frame["iteration"] == step]
        forward = rows[rows["op"] == "forward"].sort_values("start_s")
        backward = rows[rows["op"] == "backward"].sort_values("start_s")
        assert list(forward["name"]) == names
        assert list(backward["name"]) == names[::-1]     # backward runs last layer first
        assert (backward["end_s"] > backward["start_s"]).all()   # the start hook fired
        assert (rows["end_s"] >= rows["start_s"]).all()
        assert set(rows["stream"]) == {"compute"} and set(rows["rank"]) == {3}
    assert (frame["run_id"] == "run").all() and (frame["source"] == "exec").all()
    assert (frame["op"] == "update").sum() == 2


def frames_with_and_without_own_hooks(hook_kind: str, report) -> list:
    """The trace of two steps, once with the tracer's own ``hook_kind`` hooks and once with
    them off and ``report(tracer, layers)`` registering the strategy-side hooks instead."""
    frames = []
    for own_hooks in (True, False):
        model = make_model()
        layers = parametric_layers(model)
        tracer = Tracer("run", 0, counting_clock(), True)
        if not own_hooks:
            report(tracer, layers)
        tracer.attach(layers, **{hook_kind: own_hooks})
        run_steps(tracer, model, 2)
        frames.append(tracer.frame())
    return frames


def test_strategy_reported_gradients_give_the_same_rows():
    """``grad_hooks=False``: the strategy's own hook calls ``grad_ready`` instead."""
    def report(tracer, layers):
        for i, (_, _, params) in enumerate(layers):
            for p in params:
                p.register_post_accumulate_grad_hook(
                    lambda param, i=i, ready=tracer.grad_ready: ready(i))
    frames = frames_with_and_without_own_hooks("grad_hooks", report)
    assert frames[0].equals(frames[1])


def test_paused_forwards_and_disabled_tracers_write_nothing():
    model = make_model()
    tracer = Tracer("run", 0, counting_clock(), True)
    tracer.attach(parametric_layers(model))
    tracer.paused = True
    with torch.no_grad():
        model.eval()(torch.randn(2, 8))
    assert tracer.frame().empty
    off = Tracer("run", 0, counting_clock(), False)
    off.attach(parametric_layers(model))
    assert not off._handles


def test_flushed_parts_merge_into_one_trace_and_are_not_written_twice(tmp_path):
    model = make_model()
    tracer = Tracer("run", 1, counting_clock(), True)
    tracer.attach(parametric_layers(model))
    run_steps(tracer, model, 2)
    tracer.flush(tmp_path)
    run_steps(tracer, model, 1)     # step 0 again: a second part
    tracer.flush(tmp_path)
    tracer.flush(tmp_path)          # nothing new: no third part
    assert len(list((tmp_path / "partial").glob("rank-*.parquet"))) == 2
    merged = merge_partials(tmp_path)
    assert len(merged) == 3 * (4 + 4 + 1)
    assert merged["start_s"].is_monotonic_increasing
    tracer.close()
    assert not tracer._handles


def test_strategy_reported_forward_starts_give_the_same_rows():
    """``forward_hooks=False``: the strategy's own forward pre-hook calls ``forward_begins``."""
    def report(tracer, layers):
        for i, (_, module, _) in enumerate(layers):
            module.register_forward_pre_hook(
                lambda mod, args, i=i, begins=tracer.forward_begins: begins(i))
    frames = frames_with_and_without_own_hooks("forward_hooks", report)
    assert frames[0].equals(frames[1])


def test_a_users_own_hook_on_a_layer_output_still_fires():
    """The tracer puts nothing on a layer's output: a user's hook there fires as it would."""
    model = nn.Sequential(nn.Linear(8, 4), nn.Linear(4, 3))
    tracer = Tracer("run", 0, counting_clock(), True)
    tracer.attach(parametric_layers(model))
    seen = []

    def users_hook(module, args, out):
        out.register_hook(lambda grad: seen.append(grad.shape))
    model[0].register_forward_hook(users_hook)
    traced_step(tracer, model, 0, x=torch.randn(2, 8), y=torch.tensor([0, 2]))
    assert seen == [torch.Size([2, 4])]
    backward = tracer.frame().query("op == 'backward'")
    assert len(backward) == 2 and (backward["end_s"] > backward["start_s"]).all()


def step_rows(frame, step: int, op: str):
    rows = frame[(frame["iteration"] == step) & (frame["op"] == op)]
    return rows.sort_values("start_s")


def assert_tiles(rows, start: float, end: float) -> None:
    """``rows`` are contiguous and non-overlapping, from ``start`` to ``end`` exactly."""
    starts, ends = rows["start_s"].to_numpy(), rows["end_s"].to_numpy()
    assert (ends > starts).all()
    assert (starts[1:] == ends[:-1]).all()          # each starts where the one before ended
    assert starts[0] == start and ends[-1] == end
    assert (ends - starts).sum() == pytest.approx(end - start)


@pytest.mark.parametrize("own_hooks", [True, False])
def test_forward_and_backward_rows_tile_their_phase_of_the_step(own_hooks):
    """A step's forward rows run back to back from the first layer's pre-hook to the end of
    the net's forward; its backward rows from loss.backward() to the last gradient; both lie
    within the clock readings taken around those phases (the tracer's own hooks or the
    strategy's reports alike)."""
    model = make_model()
    layers = parametric_layers(model)
    tracer = Tracer("run", 0, counting_clock(), True)
    if not own_hooks:
        for i, (_, module, params) in enumerate(layers):
            module.register_forward_pre_hook(
                lambda mod, args, i=i, begins=tracer.forward_begins: begins(i))
            for p in params:
                p.register_post_accumulate_grad_hook(
                    lambda param, i=i, ready=tracer.grad_ready: ready(i))
    tracer.attach(layers, grad_hooks=own_hooks, forward_hooks=own_hooks)
    for marks, forward, backward in traced_rows(tracer, model):
        assert list(forward["name"]) == ["0", "2", "3", "5"]
        assert list(backward["name"]) == ["5", "3", "2", "0"]
        # The forward's end is stamped just before t1, the backward's start just after t2.
        assert_step_tiles(marks, forward, backward)


def test_a_real_clock_gives_tiles_that_add_up_to_the_forward_and_the_backward():
    model = make_model()
    tracer = Tracer("run", 0, time.perf_counter, True)
    tracer.attach(parametric_layers(model))
    for (t0, t1, t2, t3), forward, backward in traced_rows(tracer, model):
        assert_tiles(forward, forward["start_s"].iloc[0], forward["end_s"].iloc[-1])
        assert_tiles(backward, backward["start_s"].iloc[0], backward["end_s"].iloc[-1])
        fwd = (forward["end_s"] - forward["start_s"]).sum()
        bwd = (backward["end_s"] - backward["start_s"]).sum()
        assert 0 < fwd <= t1 - t0 and 0 < bwd <= t3 - t2


def test_forward_rows_follow_the_order_the_layers_run_in_not_the_list_order():
    """A model whose forward runs its layers in another order than they are listed: each
    row still ends at the pre-hook that fires next."""

    class Reversed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.c = nn.Linear(3, 3), nn.Linear(8, 3), nn.Linear(4, 8)

        def forward(self, x):
            return self.a(torch.relu(self.b(self.c(x))))

    torch.manual_seed(0)
    model = Reversed()
    layers = parametric_layers(model)
    assert [name for name, _, _ in layers] == ["a", "b", "c"]
    tracer = Tracer("run", 0, counting_clock(), True)
    tracer.attach(layers)
    for marks, forward, backward in traced_rows(tracer, model, 2, x=torch.randn(4, 4),
                                                y=torch.tensor([0, 1, 2, 0])):
        assert list(forward["name"]) == ["c", "b", "a"]
        assert list(backward["name"]) == ["a", "b", "c"]
        assert_step_tiles(marks, forward, backward)


def test_a_forward_row_ended_with_no_layer_leaves_a_gap_until_the_next_layer():
    """``forward_begins(-1)`` (crossiter's gate before its wait and update) ends the open
    row; the next layer's row starts at its own pre-hook."""
    tracer = Tracer("run", 0, counting_clock(), True)
    tracer.attach([("a", nn.Linear(1, 1), []), ("b", nn.Linear(1, 1), [])],
                  grad_hooks=False, forward_hooks=False)
    tracer.begin_step(0)
    tracer.forward_begins(0)
    tracer.forward_begins(-1)
    tracer.forward_begins(1)
    tracer.forward_ends()
    rows = tracer.frame().sort_values("start_s")
    assert list(rows["name"]) == ["a", "b"]
    assert rows["end_s"].iloc[0] < rows["start_s"].iloc[1]


class FakeEvent:
    """A CUDA event stand-in: recorded at a counting clock's tick."""

    ticks = itertools.count()

    def __init__(self) -> None:
        self.at_ms = float(next(FakeEvent.ticks))

    def elapsed_time(self, end: "FakeEvent") -> float:
        return end.at_ms - self.at_ms


def test_the_cuda_path_stamps_events_and_resolves_them_into_the_same_tiles(monkeypatch):
    """On CUDA every boundary is an event, resolved at end_step against the step's first
    event: the rows tile their phases as on the CPU."""
    monkeypatch.setattr(Tracer, "_event", staticmethod(FakeEvent))
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)
    model = make_model()
    tracer = Tracer("run", 0, counting_clock(), True, cuda=True)
    tracer.attach(parametric_layers(model))
    for step in range(2):
        traced_step(tracer, model, step)
    frame = tracer.frame()
    for step in range(2):
        forward, backward = step_rows(frame, step, "forward"), step_rows(frame, step, "backward")
        assert len(forward) == len(backward) == 4
        assert_tiles(forward, forward["start_s"].iloc[0], forward["end_s"].iloc[-1])
        assert_tiles(backward, backward["start_s"].iloc[0], backward["end_s"].iloc[-1])
        assert forward["end_s"].iloc[-1] < backward["start_s"].iloc[0]


def parts_of(folder) -> list[str]:
    return sorted(p.name for p in (folder / "partial").glob("rank-*.parquet"))


def test_background_parts_hold_every_row_in_order_once_a_synchronous_flush_returns(
        tmp_path, monkeypatch):
    """The periodic flush hands its rows to the writer thread; a synchronous flush waits for
    them. The parts are those synchronous flushes alone would have written, numbered in the
    order they were handed over, even when the writer is slower than the training loop."""
    import threading
    import time

    import executor.tracing as tracing

    write, writers, merged = tracing._write_part, {}, {}

    def slow_write(table, path):
        writers[path.name[-13:-8]] = threading.current_thread().name
        time.sleep(0.05)
        write(table, path)

    for background in (False, True):
        out = tmp_path / str(background)
        tracer = Tracer("run", 0, counting_clock(), True)
        if background:
            monkeypatch.setattr(tracing, "_write_part", slow_write)
        model = make_model()
        tracer.attach(parametric_layers(model))
        for _ in range(3):
            run_steps(tracer, model, 2)
            tracer.flush(out, background=background)
        run_steps(tracer, model, 1)
        tracer.flush(out)          # synchronous: waits for the three before it
        assert parts_of(out) == [f"rank-0000-a00-{k:05d}.parquet" for k in range(4)]
        merged[background] = merge_partials(out)
        tracer.close()
    # The background parts were written off the training thread, the last one on it.
    assert writers == {"00000": "trace-writer", "00001": "trace-writer",
                       "00002": "trace-writer", "00003": "MainThread"}
    assert len(merged[True]) == 7 * (4 + 4 + 1)
    assert merged[True].equals(merged[False])


def test_an_error_in_the_writer_thread_is_raised_by_the_next_flush_and_by_close(
        tmp_path, monkeypatch):
    import executor.tracing as tracing

    write, calls = tracing._write_part, []

    def failing_first(table, path):
        calls.append(path.name)
        if len(calls) == 1:
            raise OSError("disk full")
        write(table, path)
    monkeypatch.setattr(tracing, "_write_part", failing_first)
    model = make_model()
    tracer = Tracer("run", 0, counting_clock(), True)
    tracer.attach(parametric_layers(model))
    run_steps(tracer, model, 1)
    tracer.flush(tmp_path, background=True)     # fails in the thread, not here
    run_steps(tracer, model, 1)
    with pytest.raises(OSError, match="disk full"):
        tracer.flush(tmp_path)                  # the next flush raises it ...
    assert parts_of(tmp_path) == ["rank-0000-a00-00001.parquet"]   # ... its own part written
    tracer.flush(tmp_path)                      # raised once, not again
    run_steps(tracer, model, 1)
    monkeypatch.setattr(tracing, "_write_part", lambda table, path: 1 / 0)
    tracer.flush(tmp_path, background=True)
    with pytest.raises(ZeroDivisionError):
        tracer.close()                          # an error after the last flush: at close


class ShiftedCounter:
    """A clock like :class:`executor.comm.Clock`: ``raw`` counts, ``now`` is raw + shift."""

    def __init__(self, shift_s: float):
        self.shift_s, self.raw = shift_s, counting_clock()

    def now(self) -> float:
        return self.raw() + self.shift_s


def test_hooks_read_the_raw_counter_and_rows_get_the_shift_of_their_moment(tmp_path):
    """With a Clock the hooks stamp its raw counter; each row's times are what ``now()``
    read at that moment, also for rows recorded before the clock was aligned (its shift
    changed) and flushed after."""
    model = make_model()
    clock = ShiftedCounter(100.0)
    tracer = Tracer("run", 0, clock, True)
    tracer.attach(parametric_layers(model))
    marks: dict = {}
    traced_step(tracer, model, 0, marks)
    clock.shift_s = 1000.0      # aligned between the steps, before the flush
    traced_step(tracer, model, 1, marks)
    tracer.flush(tmp_path)
    rows = merge_partials(tmp_path).query("op in ('forward', 'backward')")
    assert len(rows) == 16
    for k, shift in ((0, 100.0), (1, 1000.0)):
        times = rows[rows["iteration"] == k]
        assert len(times) == 8
        times = times[["start_s", "end_s"]].to_numpy() - shift
        # Between the raw readings taken around the step's forward and backward.
        assert times.min() > marks[k][0] and times.max() < marks[k][3]


def test_a_real_clock_gives_hook_times_on_its_aligned_scale():
    comm = pytest.importorskip("executor.comm")
    clock = comm.Clock()
    clock.offset_s = 3600.0         # as align() may set it
    model = make_model()
    tracer = Tracer("run", 0, clock, True)
    tracer.attach(parametric_layers(model))
    before = clock.now()
    run_steps(tracer, model, 1)
    after = clock.now()
    hooks = tracer.frame().query("op in ('forward', 'backward')")
    assert len(hooks) == 8
    assert hooks["start_s"].min() >= before and hooks["end_s"].max() <= after
    assert clock.now() - clock.raw() == pytest.approx(clock.shift_s, abs=1e-3)


class FakeClock:
    """Seconds that pass only when a test says so."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def part_steps(step_s: float, every_steps: int, every_s: float, steps: int) -> list[int]:
    """Steps done at each periodic part of a loop of ``steps`` steps of ``step_s`` each."""
    clock = FakeClock()
    schedule = PartSchedule(every_steps, every_s, clock)
    parts = []
    for done in range(1, steps + 1):
        clock.t += step_s
        if schedule.due(done):
            schedule.written(done)
            parts.append(done)
    return parts


@pytest.mark.parametrize("step_s,spacing", [
    (1 / 64, 64),       # short steps: by time, ceil(1 s / step) steps a part
    (1 / 8, 10),        # 1.25 s per 10 steps: by steps
    (2.0, 10),          # slow steps: by steps, as before the time bound
])
def test_parts_come_by_time_at_short_steps_and_by_steps_at_long_ones(step_s, spacing):
    # Binary fractions of a second: the fake clock's sums are exact.
    assert part_steps(step_s, 10, 1.0, 400) == list(range(spacing, 401, spacing))


def test_no_time_bound_is_the_step_rule_alone():
    assert part_steps(1e-3, 7, 0.0, 50) == [7, 14, 21, 28, 35, 42, 49]


def test_a_killed_rank_keeps_all_but_its_last_second_or_flush_every_steps(tmp_path):
    """The training loop's own periodic flush (RankState.periodic_flush), a real tracer and
    a fake clock: a rank that dies between parts (no flush at all after its last periodic
    one, as after SIGKILL) leaves parts covering every step but the last <= max(flush_every,
    ceil(trace_flush_s / step)) ones."""
    pytest.importorskip("mpi4py")
    from executor.config import RunConfig, exec_strategy
    from executor.train import RankState

    for step_s, bound in ((1 / 32, 32), (0.5, 10)):
        out = tmp_path / str(step_s)
        cfg = RunConfig(nprocs=1, model="tiny-mlp", strategy=exec_strategy("sync"), batch=4,
                        steps=1000, out=str(out), flush_every=10, trace_flush_s=1.0)
        clock = FakeClock()
        state = RankState(cfg, 0, tracer=Tracer("run", 0, counting_clock(), True),
                          schedule=PartSchedule(cfg.flush_every, cfg.trace_flush_s, clock))
        model = make_model()
        state.tracer.attach(parametric_layers(model))
        killed_after = 3 * bound + bound // 2 + 1     # steps done when the rank dies
        wrote = []
        for step in range(killed_after):
            state.step = step
            traced_step(state.tracer, model, step)
            clock.t += step_s
            if state.periodic_flush(step + 1):
                wrote.append(step + 1)
        state.tracer.close()          # the background parts reach the disk; nothing else
        assert wrote == [bound, 2 * bound, 3 * bound]
        kept = set(merge_partials(out)["iteration"])
        assert kept == set(range(3 * bound))
        assert killed_after - len(kept) <= bound




def test_a_flush_from_another_thread_loses_and_repeats_no_row(tmp_path):
    """The watchdog flushes a rank from its own thread (``Watchdog(on_abort=state.flush)``)
    while the training thread records rows, appends metrics and flushes itself. Hammered
    with a switch interval of a microsecond, every row and every metrics row must reach the
    parts exactly once."""
    import sys
    import threading

    import pandas as pd
    pytest.importorskip("mpi4py")
    from executor.config import RunConfig, exec_strategy
    from executor.outputs import METRIC_COLUMNS
    from executor.tracing import PARTIAL_DIR
    from executor.train import RankState

    steps = 20_000
    cfg = RunConfig(nprocs=1, model="tiny-mlp", strategy=exec_strategy("sync"), batch=4,
                    steps=steps, out=str(tmp_path), flush_every=1, trace_flush_s=0.0)
    state = RankState(cfg, 0, tracer=Tracer("run", 0, counting_clock(), True))
    done = threading.Event()
    flushes = [0]

    def watchdog() -> None:
        while not done.is_set():
            state.flush()
            flushes[0] += 1
    filler = (0.0,) * (len(METRIC_COLUMNS) - 2)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        other = threading.Thread(target=watchdog)
        other.start()
        for step in range(steps):
            state.step = step
            state.tracer.record(step, "compute", "update", "update", step, step + 0.5)
            state.metrics.append((step, 0, *filler))
            if step % 997 == 0:
                state.flush(background=True)      # the training loop's own periodic part
        done.set()
        other.join()
    finally:
        sys.setswitchinterval(interval)
    state.flush()
    state.tracer.close()
    assert flushes[0] > 10           # the other thread did flush, many times
    iterations = merge_partials(tmp_path)["iteration"].tolist()
    assert sorted(iterations) == list(range(steps))
    parts = sorted((tmp_path / PARTIAL_DIR).glob("metrics-*.csv"))
    metrics = pd.concat([pd.read_csv(p) for p in parts])["step"].tolist()
    assert sorted(metrics) == list(range(steps))
