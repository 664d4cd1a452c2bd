"""docs/architecture.md names every module of the package (and no module that is gone); README's layout table agrees."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _doc_modules() -> set[str]:
    """Module paths (relative to ecgjax/) in the architecture doc's module table."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    table = text.split("## Modules", 1)[1]
    out = set()
    for row in table.splitlines():
        if row.startswith("| `"):
            out |= {m.removeprefix("ecgjax/") for m in re.findall(r"`([\w/]+\.py)`", row)
                    if m.startswith("ecgjax/") or (ROOT / "ecgjax" / m.split("/")[0]).is_dir()}
    return out


def test_architecture_table_lists_every_module():
    pkg = ROOT / "ecgjax"
    real = {str(p.relative_to(pkg)) for p in pkg.rglob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    doc = _doc_modules()
    assert not doc - real, f"docs/architecture.md names modules that do not exist: {sorted(doc - real)}"
    assert not real - doc, f"add these modules to docs/architecture.md's table (and README's layout): {sorted(real - doc)}"


def test_readme_layout_names_only_modules_the_architecture_doc_has():
    readme = (ROOT / "README.md").read_text()
    layout = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    doc = _doc_modules()
    for row in layout.splitlines():
        m = re.match(r"\| `ecgjax/(\w+)/` \|(.*)\|", row)
        if m:
            for f in re.findall(r"`(\w+\.py)`", m.group(2)):
                assert f"{m.group(1)}/{f}" in doc, f"README layout names ecgjax/{m.group(1)}/{f}, not in docs/architecture.md"
