"""Bring your own torch model: ``gradsync workload from-torch`` on PyTorch's own layers, then
``gradsync simulate --model`` on the file it writes.

The oracle for parameters is torch itself: ``sum(p.numel() for p in set(model.parameters()))``
(every tensor once, tied ones too). FLOPs are checked against hand counts of the same shapes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from calibration.runs import read_run  # noqa: E402
from executor.usermodel import build_user_model, example_input  # noqa: E402
from gradsync.cli.main import main  # noqa: E402
from simulator.api import simulate  # noqa: E402
from vocab.profile import load_profile  # noqa: E402
from vocab.workload import load_workload  # noqa: E402

MODELS = Path(__file__).parent / "data" / "user_models" / "mymodels.py"


def torch_params(spec: str) -> int:
    model, _ = build_user_model(spec)
    return sum(p.numel() for p in set(model.parameters()))


@pytest.mark.parametrize("factory", ["encoder", "lstm", "tied"])
def test_from_torch_counts_every_parameter_once_and_simulates(tmp_path, capsys, factory):
    spec, out = f"{MODELS}:{factory}", tmp_path / f"{factory}.yaml"
    assert main(["workload", "from-torch", spec, "--out", str(out)]) == 0
    workload = load_workload(out)
    assert workload.total_params == torch_params(spec)
    capsys.readouterr()
    assert main(["simulate", "--model", str(out), "--cluster", "dgx1-v100",
                 "--strategy", "sync,bucketed", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["results"]
    assert [r["strategy"] for r in rows] == ["sync", "bucketed"]
    assert all(r["iteration_time_s"] > 0 for r in rows)


def test_out_proj_joins_its_attention_layer(tmp_path):
    out = tmp_path / "enc.yaml"
    assert main(["workload", "from-torch", f"{MODELS}:encoder", "--out", str(out)]) == 0
    layers = {layer.name: layer for layer in load_workload(out).layers}
    assert not any("out_proj" in name for name in layers)
    # in_proj (3 E^2 + 3 E) and out_proj (E^2 + E) of E = 32, in one layer.
    assert layers["layers.0.self_attn"].params == 4 * 32 * 32 + 4 * 32
    # Per sample of 6 tokens: 2 FLOPs per weight per token, plus 4 * S * E per token.
    assert layers["layers.0.self_attn"].fwd_flops == 6 * (2 * 4 * 32 * 32 + 4 * 6 * 32)


def test_tied_head_reused_block_and_unused_layer(tmp_path, capsys):
    out = tmp_path / "tied.yaml"
    assert main(["workload", "from-torch", f"{MODELS}:tied", "--out", str(out)]) == 0
    assert "unused" in capsys.readouterr().err    # a warning, not a failure
    layers = load_workload(out).layers
    assert [layer.name for layer in layers] == ["embed", "block", "head", "unused"]
    embed, block, head, unused = layers
    assert embed.params == 50 * 16 and head.params == 0      # the tied matrix counted once
    assert block.fwd_flops == 2 * 7 * (2 * 16 * 16)          # two calls, 7 tokens
    assert head.fwd_flops == 7 * 2 * 16 * 50                 # the head computes all the same
    assert unused.params == 3 * 3 + 3


def test_a_bad_factory_or_input_is_one_line_and_exit_2(tmp_path, capsys):
    cases = [["torch.nn:LSTM"], [f"{MODELS}:nothing"], ["no.such.module:make"],
             [f"{MODELS}:encoder", "--input-shape", "2,6,31"]]
    for case in cases:
        assert main(["workload", "from-torch", *case, "--out", str(tmp_path / "x.yaml")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "error" in err and "Traceback" not in err


def test_the_example_input_follows_the_factory():
    model, factory = build_user_model(f"{MODELS}:tied")
    tokens = example_input(model, factory, 3)
    assert tokens.shape == (3, 7) and tokens.dtype == torch.int64


@pytest.mark.mpi
@pytest.mark.slow
def test_run_trains_a_user_model_for_real_and_profile_measures_it(tmp_path):
    spec = f"{MODELS}:encoder"
    out = tmp_path / "run"
    assert main(["run", "--model", spec, "-n", "2", "--strategy", "bucketed", "--batch", "2",
                 "--steps", "4", "--out", str(out)]) == 0
    run = read_run(out)
    assert run.ranks == 2 and run.strategy.name == "bucketed"
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "ok"
    # The gradient bytes the ranks exchanged are the model's parameters in fp32.
    assert record["specs"]["workload"]["total_grad_bytes"] == 4 * torch_params(spec)
    assert main(["profile", "--model", spec, "--batch", "2", "--repeats", "1", "--warmup", "0",
                 "--out", str(tmp_path / "p.yaml")]) == 0
    profile = load_profile(tmp_path / "p.yaml")
    workload_file = tmp_path / "enc.yaml"
    assert main(["workload", "from-torch", spec, "--out", str(workload_file)]) == 0
    assert list(profile.layer_names) == [l.name for l in load_workload(workload_file).layers]
    # The measured profile drives a simulation of the imported workload.
    result = simulate(cluster="local-cpu", model=workload_file, profile=tmp_path / "p.yaml",
                      strategy="sync")
    assert result.compute_s == pytest.approx(sum(profile.forward_s) + sum(profile.backward_s),
                                             rel=1e-6)
