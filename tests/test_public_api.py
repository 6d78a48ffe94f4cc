"""The public face: every name ``gradsync`` promises resolves, and importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import gradsync


@pytest.mark.parametrize("name", sorted(gradsync._PUBLIC))
def test_public_name_resolves(name: str) -> None:
    assert getattr(gradsync, name) is not None


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'simulat'"):
        gradsync.simulat  # noqa: B018 - a typo must fail loudly


def test_simulating_through_the_face_imports_no_torch() -> None:
    code = ("import sys, gradsync as gs\n"
            "gs.simulate(cluster='dgx1-p100', model='alexnet', strategy='sync', iterations=2)\n"
            "print('torch' in sys.modules, 'mpi4py' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_an_error_keeps_its_class_when_attributed_to_a_file() -> None:
    from vocab.errors import UnknownNameError

    error = UnknownNameError("device", "p99", ["p100-sxm2", "v100-sxm2"]).with_source("my.yaml")
    assert isinstance(error, UnknownNameError)
    assert error.valid == ("p100-sxm2", "v100-sxm2")
    assert str(error).startswith("my.yaml: device: got 'p99'")


def test_cli_piped_into_a_closed_reader_exits_cleanly() -> None:
    # `gradsync workload list | head -1`: the reader closes early; no traceback.
    proc = subprocess.run(f"{sys.executable} -m gradsync workload list | head -1", shell=True,
                          capture_output=True, text=True, check=False)
    assert "Traceback" not in proc.stderr
    assert proc.stdout.startswith("name")
