"""The package's import graph runs one way: every package imports only packages on its own floor or below.

Floors, lowest first (a package may import the ones below it and, lazily or not, never one above):
``utils`` (with the root modules ``errors`` and ``version``), then the data, networks and drawing, the
metric-learning parts, the detector, recognition, evaluation, training, export and the reference systems,
the one place that loads models (``loading``), the web service, and the command line on top. Every
``import`` counts, also those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import iznet

FLOORS = [
    {"utils", "errors", "version"},
    {"data", "models", "viz"},
    {"mining", "sampling"},
    {"losses"},
    {"detect"},
    {"recognize"},
    {"eval"},
    {"engine"},
    {"export", "reference"},
    {"loading", "fit"},
    {"serve"},
    {"cli", "__main__", "__init__"},
]
FLOOR = {name: i for i, floor in enumerate(FLOORS) for name in floor}
ROOT = Path(iznet.__file__).parent


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "iznet" and len(parts) > 1 else None


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names] if node.module == "iznet" \
                else [node.module]
            for name in names:
                yield node.lineno, name
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name


def test_every_package_has_a_floor():
    packages = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in ROOT.glob("*.py")}
    assert packages | modules <= set(FLOOR), sorted((packages | modules) - set(FLOOR))


def test_no_import_goes_up_a_floor():
    upward = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).parts
        here = rel[0] if len(rel) > 1 else Path(rel[0]).stem
        for line, module in _imports(path):
            there = _package(module)
            if there is not None and there in FLOOR and FLOOR[there] > FLOOR[here]:
                upward.append(f"{path.relative_to(ROOT)}:{line} ({here}) imports {module} ({there})")
    assert not upward, "\n".join(upward)
