"""docs/architecture.md's package table is the layering the source is checked against."""

from __future__ import annotations

import re
from pathlib import Path

from tests.unit.test_layers import LAYERS

ROOT = Path(__file__).resolve().parents[2]


def test_the_package_table_lists_the_layers_in_order() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = doc.split("## Packages and layering", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)/` \|", section, flags=re.MULTILINE)
    assert rows == LAYERS


def test_every_code_path_the_docs_name_exists() -> None:
    missing = sorted(
        {
            path
            for doc in [*(ROOT / "docs").glob("*.md"), ROOT / "README.md"]
            for path in re.findall(r"\b[a-z_]+/[a-z_/]*[a-z_]+\.py\b", doc.read_text("utf-8"))
            if not (ROOT / path).exists()
        }
    )
    assert missing == []
