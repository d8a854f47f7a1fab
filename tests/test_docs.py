"""Local links in the README and docs/ point at files that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("**/*.md"))]


@pytest.mark.parametrize(
    "document", DOCUMENTS, ids=lambda path: str(path.relative_to(REPO))
)
def test_local_links_exist(document: Path) -> None:
    targets = [
        target
        for target in LINK.findall(document.read_text())
        if "://" not in target and not target.startswith("mailto:")
    ]
    missing = [target for target in targets if not (document.parent / target).exists()]

    assert missing == []


def test_readme_shows_every_console_screenshot() -> None:
    readme = (REPO / "README.md").read_text()
    screenshots = sorted((REPO / "docs" / "console").glob("*.png"))

    assert screenshots
    assert [p.name for p in screenshots if f"docs/console/{p.name}" not in readme] == []
