"""Registry: a read-only name -> item mapping whose misses list the valid names and the nearest."""

from __future__ import annotations

import pytest

from hwmodels.devices import get_device
from hwmodels.fabrics import get_fabric
from vocab.errors import SpecError, UnknownNameError
from vocab.registry import Registry
from vocab.strategies import PLANNERS, STRATEGIES, make_plan
from vocab.workload import load_workload


def test_a_registry_is_a_read_only_mapping_in_given_order() -> None:
    reg = Registry("colour", [("red", 1), ("green", 2)])
    assert list(reg) == ["red", "green"] and reg.names() == ("red", "green")
    assert reg["green"] == 2 and reg.get("blue") is None and "red" in reg and len(reg) == 2
    assert {"a": 1} not in reg  # an unhashable value is just not a name
    with pytest.raises(TypeError):
        reg["blue"] = 3  # type: ignore[index]


def test_lookup_lists_the_names_and_suggests_the_nearest() -> None:
    reg = Registry("colour", {"red": 1, "green": 2}, also_valid=["custom"])
    with pytest.raises(UnknownNameError) as info:
        reg.lookup("gren")
    err = info.value
    assert isinstance(err, SpecError) and err.field == "colour" and err.suggestion == "green"
    assert set(err.valid) == {"red", "green", "custom"}
    assert "did you mean 'green'?" in str(err)
    with pytest.raises(UnknownNameError, match="node.colour: got 'zzz'") as info:
        reg.lookup("zzz", "node.colour")
    assert info.value.suggestion is None and "did you mean" not in str(info.value)


def test_a_name_given_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        Registry("colour", [("red", 1), ("red", 2)])


def test_strategy_planners_are_the_strategies() -> None:
    assert PLANNERS.names() == STRATEGIES


@pytest.mark.parametrize(("lookup", "typo", "near"), [
    (lambda name: make_plan(name, [4, 4]), "bucketd", "bucketed"),
    (load_workload, "alexnt", "alexnet"),
    (get_device, "v100-sxm", "v100-sxm2"),
    (get_fabric, "ib-edrr", "ib-edr"),
])
def test_typos_get_a_did_you_mean(lookup, typo: str, near: str) -> None:
    with pytest.raises(UnknownNameError, match=f"did you mean '{near}'"):
        lookup(typo)
