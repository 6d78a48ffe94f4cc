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
