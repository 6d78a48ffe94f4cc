"""The one strict YAML reader: repeated keys, bad syntax and bad bytes name the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwmodels.cluster import PRESET_DIR, load_cluster
from simulator.sweep import load_grid
from vocab.errors import SpecError
from vocab.profile import ComputeProfile, load_profile, save_profile
from vocab.workload import Layer, Workload, load_workload, save_workload
from vocab.yamlfile import dump_yaml, parse_yaml, read_yaml


def test_a_repeated_key_names_the_key_and_both_lines() -> None:
    with pytest.raises(SpecError) as info:
        parse_yaml("a: 1\nb:\n  c: 2\n  c: 3\n", "mine.yaml")
    message = str(info.value)
    assert message.startswith("mine.yaml: c:")
    assert "line 4" in message and "line 3" in message
    assert info.value.source == "mine.yaml" and info.value.field == "c"


def test_a_repeated_key_in_a_flow_mapping_is_caught() -> None:
    with pytest.raises(SpecError, match="line 1"):
        parse_yaml("x: {value: 1, value: 2}\n", "f.yaml")


def test_syntax_error_names_the_file_and_line() -> None:
    with pytest.raises(SpecError) as info:
        parse_yaml("a: 1\nb: [1, 2\nc: 3\n", "bad.yaml")
    assert str(info.value).startswith("bad.yaml: yaml:") and "line " in str(info.value)


def test_non_utf8_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"a: 1\nb: caf\xe9\n")
    with pytest.raises(SpecError) as info:
        read_yaml(path)
    assert str(path) in str(info.value) and "line 2" in str(info.value)
    assert "UTF-8" in str(info.value)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="an existing file"):
        read_yaml(tmp_path / "nope.yaml")
    with pytest.raises(SpecError, match="not a directory"):
        read_yaml(tmp_path)


def test_plain_yaml_reads_as_usual() -> None:
    assert parse_yaml("a: [1, 2]\nb: {c: x}\n", "s") == {"a": [1, 2], "b": {"c": "x"}}
    assert parse_yaml("", "s") is None


def test_dump_writes_figures_on_one_line_and_reads_back() -> None:
    data = {"bw": {"value": "25 GB/s", "source": "a paper"}, "n": 3}
    text = dump_yaml(data)
    assert "bw: {value: 25 GB/s, source: a paper}" in text
    assert parse_yaml(text, "s") == data


def _repeat_first_key(path: Path) -> int:
    """Append the file's first top-level key again; the line number of the repeat."""
    lines = path.read_text().splitlines()
    first = next(line for line in lines if line and not line.startswith(("#", " ", "-")))
    lines.append(first)
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def _assert_names_key_and_line(exc: SpecError, path: Path, key: str, line: int) -> None:
    message = str(exc)
    assert str(path) in message and f"{key}:" in message and f"line {line}" in message, message


def test_a_workload_file_with_a_repeated_key(tmp_path: Path) -> None:
    path = save_workload(Workload("tiny", (Layer("fc", 10, 20.0),)), tmp_path / "tiny.yaml")
    line = _repeat_first_key(path)
    with pytest.raises(SpecError) as info:
        load_workload(path)
    _assert_names_key_and_line(info.value, path, "name", line)


def test_a_profile_file_with_a_repeated_key(tmp_path: Path) -> None:
    profile = ComputeProfile("dev", "toy", 4, (0.1, 0.2), (0.2, 0.4), 0.01)
    path = save_profile(profile, tmp_path / "p.yaml")
    assert load_profile(path) == profile
    line = _repeat_first_key(path)
    key = path.read_text().splitlines()[-1].split(":")[0]
    with pytest.raises(SpecError) as info:
        load_profile(path)
    _assert_names_key_and_line(info.value, path, key, line)


def test_a_cluster_file_with_a_repeated_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text((PRESET_DIR / "dgx1-p100.yaml").read_text())
    line = _repeat_first_key(path)
    with pytest.raises(SpecError) as info:
        load_cluster(path)
    _assert_names_key_and_line(info.value, path, "name", line)


def test_a_sweep_grid_with_a_repeated_key(tmp_path: Path) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text("model: alexnet\nranks: [1, 2]\nmodel: vgg16\n")
    with pytest.raises(SpecError) as info:
        load_grid(path)
    _assert_names_key_and_line(info.value, path, "model", 3)
