"""The trace vocabulary (schema v1): declared sources, streams and ops are enforced on write."""

from __future__ import annotations

import pandas as pd
import pytest

from simulator.api import simulate
from vocab.errors import GradsyncError, UnknownNameError
from vocab.trace import (
    OPS,
    STREAMS,
    TRACE_FILE,
    TraceRecorder,
    check_vocabulary,
    read_trace,
    write_trace,
)


def row(stream: str = "compute", op: str = "forward") -> tuple:
    return (0, 0, stream, op, "conv1", -1, 0, 0.0, 1.0)


def test_declared_streams_and_ops_round_trip(tmp_path):
    recorder = TraceRecorder("r", "exec")
    recorder.extend(row(stream, op) for stream in STREAMS for op in OPS)
    frame = recorder.to_frame()
    back = read_trace(write_trace(frame, tmp_path))
    assert set(back["stream"]) == set(STREAMS) and set(back["op"]) == set(OPS)


@pytest.mark.parametrize("column,stream,op,bad", [
    ("stream", "gpu", "forward", "gpu"),
    ("op", "compute", "allreduc", "allreduc"),
])
def test_an_undeclared_stream_or_op_is_refused_naming_it(tmp_path, column, stream, op, bad):
    recorder = TraceRecorder("r", "sim")
    recorder.extend([row(), row(stream, op)])
    with pytest.raises(UnknownNameError, match=f"trace {column}: got '{bad}'") as info:
        recorder.to_frame()
    assert isinstance(info.value, GradsyncError) and info.value.value == bad
    # and a frame built elsewhere (the executor's merged parts) is refused on write
    frame = pd.DataFrame([("r", "exec", *row(stream, op))],
                         columns=["run_id", "source", "iteration", "rank", "stream", "op",
                                  "name", "bucket", "nbytes", "start_s", "end_s"])
    with pytest.raises(UnknownNameError, match=bad):
        write_trace(frame, tmp_path / "run")
    assert not (tmp_path / "run" / TRACE_FILE).exists()


def test_the_nearest_op_is_suggested():
    frame = pd.DataFrame({"op": ["forward", "backwrd"]})
    with pytest.raises(UnknownNameError, match="did you mean 'backward'"):
        check_vocabulary(frame)


def test_an_undeclared_source_is_refused():
    with pytest.raises(UnknownNameError, match="trace source: got 'real'"):
        TraceRecorder("r", "real")


@pytest.mark.parametrize("strategy,fidelity", [("layerwise", "analytic"),
                                               ("delayed", "analytic"),
                                               ("crossiter", "analytic"),
                                               ("bucketed", "detailed")])
def test_every_op_the_simulator_emits_is_declared(strategy, fidelity):
    trace = simulate("dgx1-p100", "alexnet-ci", 8, strategy, iterations=1,
                     fidelity=fidelity).trace
    assert set(trace["op"]) <= set(OPS) and set(trace["stream"]) <= set(STREAMS)
    assert {"forward", "backward", "allreduce", "update"} <= set(trace["op"])
