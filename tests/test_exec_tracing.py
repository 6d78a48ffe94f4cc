"""The executor's tracer in one process: which rows its hooks write, and its partial parts."""

from __future__ import annotations

import itertools

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


def run_steps(tracer: Tracer, model: nn.Module, steps: int, report_grads=None) -> None:
    x, y = torch.randn(4, 8), torch.tensor([0, 1, 2, 0])
    for step in range(steps):
        tracer.begin_step(step)
        model.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        if report_grads is not None:
            report_grads()
        tracer.end_step()
        tracer.record(step, "compute", "update", "update", 1.0 + step, 1.5 + step)


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


def test_the_lent_backward_hook_gives_the_rows_of_the_public_one(monkeypatch):
    """The backward start watched through the output's lent hook dict (the fast path) and
    through ``Node.register_prehook`` (the fallback) stamp the same moments."""
    import executor.tracing as tracing

    frames = []
    for lend in (True, False):
        monkeypatch.setattr(tracing, "_CAN_LEND", lend)
        model = make_model()
        tracer = Tracer("run", 0, counting_clock(), True)
        tracer.attach(parametric_layers(model))
        run_steps(tracer, model, 2)
        frames.append(tracer.frame())
    assert tracing._can_lend()      # this torch has the fast path
    assert frames[0].equals(frames[1])


def test_a_users_own_hook_on_a_layer_output_still_fires_and_stays_its_own():
    model = nn.Sequential(nn.Linear(8, 4), nn.Linear(4, 3))
    tracer = Tracer("run", 0, counting_clock(), True)
    tracer.attach(parametric_layers(model))
    seen = []

    def users_hook(module, args, out):
        out.register_hook(lambda grad: seen.append(grad.shape))

    # Run before the tracer's: the output carries hooks of its own when the tracer's forward
    # hook sees it, so the tracer takes the public path and leaves them alone.
    model[0].register_forward_hook(users_hook, prepend=True)
    tracer.begin_step(0)
    out = model(torch.randn(2, 8))
    out.sum().backward()
    assert seen == [torch.Size([2, 4])]
    backward = tracer.frame().query("op == 'backward'")
    assert len(backward) == 2 and (backward["end_s"] > backward["start_s"]).all()


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
    run_steps(tracer, model, 1)
    clock.shift_s = 1000.0      # aligned between the steps, before the flush
    run_steps(tracer, model, 1)
    tracer.flush(tmp_path)
    rows = merge_partials(tmp_path).query("op in ('forward', 'backward')")
    assert len(rows) == 16
    ticks = 4 * 4            # per step: four clock readings for each of four layers
    for k, shift in ((0, 100.0), (1, 1000.0)):
        times = rows[rows["start_s"] > 900.0] if k else rows[rows["start_s"] < 900.0]
        assert len(times) == 8
        times = times[["start_s", "end_s"]].to_numpy() - shift
        assert times.min() >= k * ticks and times.max() < (k + 1) * ticks


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
            run_steps_from(state.tracer, model, step)
            clock.t += step_s
            if state.periodic_flush(step + 1):
                wrote.append(step + 1)
        state.tracer.close()          # the background parts reach the disk; nothing else
        assert wrote == [bound, 2 * bound, 3 * bound]
        kept = set(merge_partials(out)["iteration"])
        assert kept == set(range(3 * bound))
        assert killed_after - len(kept) <= bound


def run_steps_from(tracer: Tracer, model: nn.Module, step: int) -> None:
    """One traced step numbered ``step``."""
    x, y = torch.randn(4, 8), torch.tensor([0, 1, 2, 0])
    tracer.begin_step(step)
    model.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(model(x), y).backward()
    tracer.end_step()
    tracer.record(step, "compute", "update", "update", 1.0 + step, 1.5 + step)


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
