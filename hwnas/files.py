"""Reading the small text files a user hands hwnas (search spaces, profiles), bounded and with one-line errors.

A definition file is read only if it is a regular file (not a folder, a FIFO or a device: reading a FIFO would
wait forever) of at most :data:`MAX_DEFINITION_BYTES`, as UTF-8 (a BOM is allowed). YAML is parsed with
PyYAML's safe loader (no object construction) and bounded: an alias ("billion laughs") bomb is refused by the
size of the document it would expand to, and so are documents nested too deeply to walk. Every failure is a
:class:`~hwnas.errors.HwnasError` of the caller's kind whose message starts with the file's name.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from hwnas.errors import HwnasError

#: Definitions are a few kilobytes; a megabyte is far beyond any real one.
MAX_DEFINITION_BYTES = 1 << 20
#: Nodes a YAML document may expand to (its aliases followed): ample for a space or a profile.
MAX_YAML_NODES = 100_000
#: How deeply a YAML document may nest.
MAX_YAML_DEPTH = 64


def regular_file_size(path: str | Path, error: type[HwnasError], *, what: str = "a file",
                      missing: str = "no such file", shown_as: str | None = None) -> int:
    """The size of ``path`` if it is a regular file; else ``error`` naming it (``shown_as``, default the path)
    and saying it is not ``what``. Every reader of a user's file asks this first: reading a FIFO would wait
    forever, a device never end, and a folder is no file."""
    shown = shown_as or str(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise error(f"{shown}: {missing}") from None
    except (OSError, ValueError) as exc:  # a NUL in the name is a ValueError
        raise error(f"{shown}: cannot read it: {getattr(exc, 'strerror', None) or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{shown}: is a folder, not {what}")
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{shown}: not a regular file (a pipe, socket or device is not {what})")
    return info.st_size


def read_text(path: str | Path, error: type[HwnasError], *, max_bytes: int = MAX_DEFINITION_BYTES) -> str:
    """The UTF-8 text of the regular file ``path``; ``error`` naming the file when it cannot be that."""
    path = Path(path)
    size = regular_file_size(path, error, what="a definition file")
    if size > max_bytes:
        raise error(f"{path}: {size} bytes is too large for a definition file (at most {max_bytes})")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot read it: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8") from None


def load_yaml(path: str | Path, error: type[HwnasError]) -> Any:
    """The YAML document in ``path`` (see the module docstring for the bounds)."""
    return parse_yaml(read_text(path, error), str(path), error)


def parse_yaml(text: str, where: str, error: type[HwnasError]) -> Any:
    """One YAML document from ``text``; ``where`` names it in errors."""
    try:
        loader = yaml.SafeLoader(text)  # refuses a text with characters YAML forbids (NUL, ...) at once
    except yaml.YAMLError as exc:
        raise error(f"{where}: not valid YAML: {_first_line(exc)}") from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(node, where, error)
        return loader.construct_document(node)
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: an integer of 5000 digits, a date 2024-13-45
        raise error(f"{where}: not valid YAML: {_first_line(exc)}") from None
    except RecursionError:
        raise error(f"{where}: nested too deeply to read (at most {MAX_YAML_DEPTH} levels)") from None
    finally:
        loader.dispose()


def _check_size(root: yaml.Node, where: str, error: type[HwnasError]) -> None:
    """Refuse a document nested deeper than :data:`MAX_YAML_DEPTH` or expanding (its aliases followed, each
    shared node counted once per use) to more than :data:`MAX_YAML_NODES` nodes, without expanding it."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        if depth > MAX_YAML_DEPTH:
            raise error(f"{where}: nested too deeply to read (at most {MAX_YAML_DEPTH} levels)")
        children = _children(node)
        if id(node) in sizes:
            continue
        if done or not children:
            sizes[id(node)] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[id(node)] > MAX_YAML_NODES:
                raise error(f"{where}: expands to more than {MAX_YAML_NODES} values (YAML aliases?); "
                            "a definition file is far smaller")
            continue
        stack.append((node, depth, True))
        stack.extend((c, depth + 1, False) for c in children if id(c) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _first_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:300] + " …"
