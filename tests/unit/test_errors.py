"""One error root: every exception class Threadline defines derives from `ThreadlineError`
and is named `…Error`, so a caller catches everything raised on purpose in one clause."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

from threadline.ledger.errors import ThreadlineError

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["ledger", "projections", "handoff", "agent", "access", "streaming", "channels", "app"]


def _exception_modules() -> list[str]:
    """Modules that define a class deriving from something named *Error or Exception."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in tree.body:
                if isinstance(node, ast.ClassDef) and any(
                    isinstance(b, ast.Name | ast.Attribute)
                    and ast.unparse(b).split(".")[-1].endswith(("Error", "Exception"))
                    for b in node.bases
                ):
                    rel = path.relative_to(ROOT).with_suffix("")
                    found.append("threadline." + ".".join(rel.parts))
                    break
    return found


MODULES = _exception_modules()


def test_every_package_has_an_error_module() -> None:
    assert {m for m in MODULES if m.endswith(".errors")} >= {
        f"threadline.{p}.errors" for p in PACKAGES if (ROOT / p / "errors.py").exists()
    }
    assert len(MODULES) >= 10


@pytest.mark.parametrize("module", MODULES)
def test_exceptions_share_the_root_and_the_suffix(module: str) -> None:
    mod = importlib.import_module(module)
    classes = [
        cls
        for _, cls in inspect.getmembers(mod, inspect.isclass)
        if issubclass(cls, BaseException) and cls.__module__ == module
    ]
    assert classes
    for cls in classes:
        assert issubclass(cls, ThreadlineError), cls
        assert cls.__name__.endswith("Error"), cls
