"""Imports point down the flow: no module imports a later stage, nor the composing layer.

Ranks follow the data flow; the activation seam runs activation -> delivery -> destinations
(activation enqueues through delivery, delivery runs the adapters), so destinations rank below
delivery and delivery below activation. ``server``, ``cli`` and the demo compose the stages
and nothing below them may import them. Imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import traitsync

ROOT = Path(traitsync.__file__).parent

RANKS: dict[str, int] = {
    # foundations every stage may use
    "__init__": 0, "errors": 0, "logging": 0, "workers": 0, "config": 0, "spec": 0, "store": 0,
    "log": 1, "ingest": 2, "identity": 3, "profiles": 4, "definitions": 5, "compute": 6,
    "destinations": 7, "delivery": 8, "activation": 9,
    # privacy reaches into every stage's tables (a deletion), so it comes after all of them
    "privacy": 10, "retention": 10,
    # composition
    "validation": 11, "console": 11, "server": 11, "demo": 12, "cli_options": 12, "cli_activation": 12,
    "cli_privacy": 12, "cli_batch": 12, "cli": 13,
}


def unit(module: str) -> str:
    """``traitsync.delivery.worker`` -> ``delivery``; ``traitsync.cli`` -> ``cli``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    package = ".".join(("traitsync", *path.relative_to(ROOT).with_suffix("").parts))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("traitsync")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level)[0]
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            if name.startswith("traitsync"):
                found.append((node.lineno, name))
    return found


def test_every_top_level_unit_has_a_rank() -> None:
    units = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
             if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))}
    assert units - set(RANKS) == set(), "give new packages a rank in RANKS"


def test_no_module_imports_a_later_stage_or_the_composing_layer() -> None:
    violations: list[str] = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if "migrations" in rel.parts:
            continue
        importer = rel.parts[0].removesuffix(".py")
        for line, module in imports_of(path):
            imported = unit(module)
            if imported == importer:
                continue
            if RANKS[imported] > RANKS[importer]:
                violations.append(f"{rel}:{line} ({importer}) imports {module} ({imported})")
    assert violations == []
