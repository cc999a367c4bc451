"""YAML reading that refuses duplicate keys.

PyYAML's ``safe_load`` keeps the last of two equal keys in a mapping, so a record holding
``mean: 16.0`` and, further down, ``mean: 61.0`` silently becomes 61.0. :func:`safe_load` raises
instead, naming the line and column of the repeated key and of its first occurrence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class UniqueKeySafeLoader(yaml.SafeLoader):
    """A ``SafeLoader`` whose mappings reject a key given twice."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Build the mapping, raising on a key that occurs twice (PyYAML keeps the last)."""
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class reports it
                break
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark,
                    f"found the key {key!r} twice (first on line {first.start_mark.line + 1}); "
                    "keep one", key_node.start_mark)
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def safe_load(text: str) -> Any:
    """Like :func:`yaml.safe_load`, but a duplicate key raises ``yaml.YAMLError``."""
    return yaml.load(text, Loader=UniqueKeySafeLoader)


def _located(name: str, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = name if mark is None else f"{name} line {mark.line + 1}, column {mark.column + 1}"
    return f"{where}: not valid YAML: {problem}"


def read_document(path: Path) -> tuple[yaml.Node | None, Any]:
    """The node tree (for line numbers) and the data of a YAML file.

    Raises
    ------
    ValueError
        One line naming the file (and line and column where there is one): not UTF-8, empty,
        not YAML, or a duplicate key.
    """
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ValueError(f"{path.name} line {line}: not UTF-8 text (byte "
                         f"0x{raw[exc.start:exc.start + 1].hex().upper()}); save the file as "
                         "UTF-8") from exc
    if not text.strip() or all(not ln.strip() or ln.lstrip().startswith("#")
                               for ln in text.splitlines()):
        raise ValueError(f"{path.name}: the file is empty (expected a mapping with a 'study' "
                         "mapping and a 'results' list)")
    try:
        return yaml.compose(text, Loader=UniqueKeySafeLoader), safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(_located(path.name, exc)) from exc
