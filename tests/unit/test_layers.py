"""The design card's layering, checked from the source: imports point inward only
(app → channels → streaming → access → agent → handoff → projections → ledger, the card's
channels → handoff → projections → ledger with the homes of issue 13 in between), every import
of ours goes through the one name `threadline`, and vendor SDKs live only in leaf adapter
files."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = [  # inner → outer
    "ledger",
    "projections",
    "handoff",
    "agent",
    "access",
    "streaming",
    "channels",
    "app",
]
VENDORS = {
    "aiortc",
    "av",
    "openai",
    "kafka",
    "psycopg",
    "psycopg_pool",
    "pocketsphinx",
    "aiosipua",
    "aiortp",
}
WEB_OR_MEDIA = {"fastapi", "starlette", "uvicorn", "aiortc", "av", "httpx"}


def _dotted_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _imports(path: Path) -> set[str]:
    """Top-level names imported; `threadline.X` counts as the layer X."""
    names: set[str] = set()
    for dotted in _dotted_imports(path):
        parts = dotted.split(".")
        names.add(parts[1] if parts[0] == "threadline" and len(parts) > 1 else parts[0])
    return names


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", LAYERS)
def test_imports_point_inward(package: str) -> None:
    outer = set(LAYERS[LAYERS.index(package) + 1 :])
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imports(path) & outer)
        for path in _modules(package)
        if _imports(path) & outer
    }
    assert offenders == {}


def test_ledger_imports_no_web_or_media_framework() -> None:
    offenders = {
        str(p.relative_to(ROOT)): sorted(_imports(p) & WEB_OR_MEDIA)
        for p in _modules("ledger")
        if _imports(p) & WEB_OR_MEDIA
    }
    assert offenders == {}


def test_every_import_of_ours_goes_through_threadline() -> None:
    """`import ledger` would load a second copy of a module beside `threadline.ledger`."""
    ours = set(LAYERS)
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            d for d in _dotted_imports(path) if d.split(".")[0] in ours
        )
        for path in [*ROOT.glob("tests/**/*.py"), *ROOT.glob("benchmarks/*.py")]
        + [p for package in LAYERS for p in _modules(package)]
        if any(d.split(".")[0] in ours for d in _dotted_imports(path))
    }
    assert offenders == {}


def _module_level_imports(path: Path) -> set[str]:
    """Imports executed when the module is imported (lazy imports inside functions and
    TYPE_CHECKING blocks do not pull a vendor SDK in)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_vendor_sdks_only_in_leaf_adapter_files() -> None:
    """A leaf adapter is a module that no module of ours imports at import time: it is loaded
    lazily where it is chosen, so the SDK stays an optional extra."""
    all_modules = [p for package in LAYERS for p in _modules(package)]
    imported_by_us: set[str] = set()
    for path in all_modules:
        # A leaf importing another leaf of the same SDK (ledger.partitions_postgres
        # subclasses ledger.postgres) keeps the SDK optional: both load lazily.
        if not (_imports(path) & VENDORS):
            imported_by_us |= _module_level_imports(path)
    offenders = []
    for path in all_modules:
        if not (_imports(path) & VENDORS):
            continue
        dotted = ".".join(("threadline", *path.relative_to(ROOT).with_suffix("").parts))
        if dotted in imported_by_us or path.name == "__init__.py":
            offenders.append(dotted)
    assert offenders == []
