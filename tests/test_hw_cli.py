"""``gradsync hw``: the tables, the summary, the JSON form, and bad input without tracebacks."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from gradsync.cli.main import main

BAD_DIR = Path(__file__).parent / "data" / "bad_clusters"


def show_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["hw", "show", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def nvlinks_per_gpu(data: dict) -> Counter:
    per_gpu: Counter = Counter()
    for link in data["intra_links"]:
        per_gpu[link["a"]] += link["links"]
        per_gpu[link["b"]] += link["links"]
    return per_gpu


def test_show_json_has_the_contract_fields(capsys: pytest.CaptureFixture[str]) -> None:
    data = show_json(capsys, "dgx1-v100")
    assert {"name", "nodes", "devices_per_node", "device", "intra_links", "fabric"} <= set(data)
    assert (data["name"], data["nodes"], data["devices_per_node"]) == ("dgx1-v100", 1, 8)
    assert data["device"]["name"] == "v100-sxm2" and data["device"]["peak_flops"] == 15.7e12
    assert data["fabric"]["name"] == "ib-edr"
    for link in data["intra_links"]:
        assert {"a", "b", "links", "bandwidth_Bps"} <= set(link)
        assert isinstance(link["a"], int) and isinstance(link["b"], int) and link["a"] < link["b"]


def test_show_json_every_v100_has_six_nvlinks_and_p100_four(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert nvlinks_per_gpu(show_json(capsys, "dgx1-v100")) == {d: 6 for d in range(8)}
    assert nvlinks_per_gpu(show_json(capsys, "dgx1-p100")) == {d: 4 for d in range(8)}


def test_show_nodes_overrides_the_file(capsys: pytest.CaptureFixture[str]) -> None:
    data = show_json(capsys, "dgx1-v100", "--nodes", "16")
    assert data["nodes"] == 16 and data["total_devices"] == 128


def test_show_prints_a_readable_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hw", "show", "dgx1-p100"]) == 0
    out = capsys.readouterr().out
    assert "dgx1-p100" in out and "p100-sxm2" in out and "ib-edr" in out
    assert "0: 4 links" in out


def test_list_shows_presets_devices_and_fabrics(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hw", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("dgx1-v100", "cpu-sandybridge-fdr", "h100-sxm5", "xeon-e5-2670x2", "ib-ndr",
                 "eth-100g"):
        assert name in out


@pytest.mark.parametrize("target", ["no-such-preset", str(BAD_DIR / "unknown_device.yaml"),
                                    str(BAD_DIR / "yaml_syntax.yaml"), "missing/file.yaml"])
def test_bad_input_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str],
                                          target: str) -> None:
    assert main(["hw", "show", target]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gradsync hw: error: ") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_too_many_nodes_on_the_command_line_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hw", "show", "pcie8-p100", "--nodes", "100000"]) == 2
    assert "nodes" in capsys.readouterr().err
