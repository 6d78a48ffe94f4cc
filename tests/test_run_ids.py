"""Run ids name directories and files (``Comparison.save``, a user's ``r.save(r.run_id)``): a
factory model's ``pkg.mod:factory`` or ``dir/file.py:factory`` must not put ':' or '/' in
them. The one maker is :func:`vocab.runrecord.make_run_id`; both the simulator and the
executor use it."""

from __future__ import annotations

import re
from dataclasses import replace
from types import SimpleNamespace

import pytest

from simulator.api import simulate
from vocab.runrecord import RUN_ID_PART_MAX, make_run_id
from vocab.workload import load_workload

#: POSIX's portable filename character set, not starting with '.' (hidden) or '-' (a flag).
PORTABLE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
FACTORIES = ["mypkg.models:make_net", "models/net.py:build", r"C:\work\my net.py:build",
             "/tmp/" + "x" * 200 + ".py:f"]


@pytest.mark.parametrize("model", FACTORIES)
def test_a_factory_models_id_is_a_portable_file_name(model, tmp_path):
    run_id = make_run_id("sim", model, "sync", "0123456789")
    assert PORTABLE.fullmatch(run_id), run_id
    assert len(run_id) < 255                  # a name every file system takes
    (tmp_path / run_id).mkdir()               # and one this one takes
    assert run_id.startswith("sim-") and run_id.endswith("-sync-0123456789")


def test_zoo_names_are_kept_and_long_names_cut():
    assert make_run_id("sim", "resnet50", "bucketed", "abc") == "sim-resnet50-bucketed-abc"
    long = make_run_id("exec", "m" * 500)
    assert long == "exec-" + "m" * RUN_ID_PART_MAX
    # the readable part of a factory survives: module and factory
    assert make_run_id("sim", "mypkg.models:make_net") == "sim-mypkg.models_make_net"


def test_a_simulated_factory_model_saves_under_its_own_id(tmp_path):
    workload = replace(load_workload("alexnet"), name="mypkg.models:make_net")
    result = simulate(cluster="dgx1-p100", model=workload, strategy="sync", iterations=1)
    assert ":" not in result.run_id and "/" not in result.run_id
    assert "mypkg.models" in result.run_id
    saved = result.save(tmp_path / result.run_id)
    assert (saved / "run.json").exists() and saved.parent == tmp_path
    again = simulate(cluster="dgx1-p100", model=workload, strategy="sync", iterations=1)
    assert again.run_id == result.run_id       # still deterministic


def test_an_executor_run_of_a_factory_model_has_a_portable_id():
    outputs = pytest.importorskip("executor.outputs")
    cfg = SimpleNamespace(model="tests/data/user_models/mymodels.py:encoder",
                          strategy=SimpleNamespace(name="bucketed"), nprocs=2)
    run_id = outputs.new_run_id(cfg)
    assert PORTABLE.fullmatch(run_id), run_id
    assert re.fullmatch(r"exec-tests_data_user_models_mymodels.py_encoder-bucketed-n2-"
                        r"\d{8}-\d{6}-\d{4}", run_id), run_id
