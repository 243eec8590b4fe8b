"""Load YAML while remembering the line of every key, so errors can name file, line and key."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from traitsync.errors import ConfigError

KeyPath = tuple[str | int, ...]
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def format_path(path: KeyPath) -> str:
    """``("sources", 0, "write_key")`` -> ``sources[0].write_key``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass
class LocatedDocument:
    """A parsed YAML document plus the line (1-based) of each key path."""

    file: str
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line_of(self, path: KeyPath) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        probe = tuple(path)
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            probe = probe[:-1]
        return self.lines.get((), None)

    def error(self, path: KeyPath, message: str) -> ConfigError:
        return ConfigError(message, file=self.file, line=self.line_of(path), key=format_path(path) or None)


def _substitute(value: str, path: KeyPath, doc_file: str, line: int) -> str:
    def repl(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise ConfigError(f"environment variable {name} is not set (referenced as ${{{name}}}); "
                          f"export it or give a default as ${{{name}:-value}}",
                          file=doc_file, line=line, key=format_path(path))

    return _ENV_REF.sub(repl, value)


def _build(node: yaml.Node, path: KeyPath, doc: LocatedDocument) -> Any:
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if not isinstance(key, str):
                raise ConfigError("keys must be strings", file=doc.file, line=key_node.start_mark.line + 1,
                                  key=format_path(path))
            if key in result:
                raise ConfigError(f"duplicate key {key!r}", file=doc.file,
                                  line=key_node.start_mark.line + 1, key=format_path((*path, key)))
            doc.lines[(*path, key)] = key_node.start_mark.line + 1
            result[key] = _build(value_node, (*path, key), doc)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), doc) for i, item in enumerate(node.value)]
    assert isinstance(node, yaml.ScalarNode)
    constructed = _construct_scalar(node)
    if isinstance(constructed, str) and "${" in constructed:
        return _substitute(constructed, path, doc.file, node.start_mark.line + 1)
    return constructed


def _construct_scalar(node: yaml.ScalarNode) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def load_yaml_text(text: str, file: str = "<string>") -> LocatedDocument:
    doc = LocatedDocument(file=file, data=None)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ConfigError(f"invalid YAML: {exc.problem}", file=file,
                          line=(mark.line + 1) if mark else None) from exc
    doc.data = {} if root is None else _build(root, (), doc)
    return doc


def load_yaml_file(path: str | Path) -> LocatedDocument:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {p} (create it, or point TRAITSYNC_CONFIG or -c at one)",
                          file=str(p)) from exc
    return load_yaml_text(text, file=str(p))
