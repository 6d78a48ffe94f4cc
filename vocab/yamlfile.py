"""The one YAML reader (and writer) for every gradsync file kind.

Cluster files, the device and fabric data files, workloads, profiles and sweep grids are all
read here. PyYAML on its own keeps the last of two equal keys in a mapping without a word; a
hand-edited file with ``bandwidth`` written twice then means something its author did not
see. :func:`parse_yaml` rejects repeated keys, and turns every problem (bad syntax, a repeated
key, bytes that are not UTF-8, a missing file) into a :class:`~vocab.errors.SpecError` that
names the file and the line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from vocab.errors import SpecError
from vocab.files import read_text

__all__ = ["dump_yaml", "parse_yaml", "read_mapping", "read_yaml"]

# The C parser when PyYAML was built with libyaml (workload files are read often); the
# constructor, and so the duplicate-key check below, is the same Python code either way.
_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """A safe loader that rejects duplicate keys: PyYAML would silently keep the last one."""


def _construct_mapping(loader: Any, node: yaml.MappingNode, deep: bool = False) -> dict:
    first_line: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        line = key_node.start_mark.line + 1
        try:
            seen = first_line.get(key)
        except TypeError:  # an unhashable key: construct_mapping says so, with its mark
            break
        if seen is not None:
            raise SpecError(str(key), key, f"each key once in a mapping (line {line} repeats "
                            f"the key of line {seen})")
        first_line[key] = line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml(text: str, source: str) -> Any:
    """The data in YAML ``text``; any problem is a SpecError naming ``source`` and the line."""
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or str(exc)
        raise SpecError("yaml", problem, f"valid YAML syntax{where}", source) from None
    except yaml.YAMLError as exc:
        raise SpecError("yaml", str(exc), "valid YAML syntax", source) from None
    except SpecError as exc:  # a repeated key
        raise exc.with_source(source) from None


def read_yaml(path: str | Path) -> Any:
    """Parse the file at ``path``; a missing, unreadable, non-UTF-8 or bad file is a SpecError."""
    return parse_yaml(read_text(path, "a YAML file"), str(Path(path)))


def read_mapping(path: str | Path, what: str = "a YAML file") -> dict[Any, Any]:
    """:func:`read_yaml` of a file that must hold a mapping (every gradsync file kind does):
    an empty file, a list or a bare value is a SpecError naming the file."""
    data = read_yaml(path)
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a YAML {type(data).__name__}"
        raise SpecError("file", got, f"a mapping of keys to values ({what})", str(Path(path)))
    return data


class _Dumper(yaml.SafeDumper):
    """Writes ``{value: ..., source: ...}`` figures on one line, like hand-written files."""


def _represent_dict(dumper: _Dumper, data: dict) -> yaml.Node:
    flow = set(data) == {"value", "source"}
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=flow)


_Dumper.add_representer(dict, _represent_dict)


def dump_yaml(data: Any) -> str:
    """YAML text for ``data``, keys in the given order, figures with sources on one line."""
    # No line wrapping: a wrapped one-line figure is harder to read than a long line.
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=10**6,
                     default_flow_style=False)
