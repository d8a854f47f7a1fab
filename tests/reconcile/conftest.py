"""Fixtures of the reconciliation tests: directory files written to tmp_path."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

WriteDirectory = Callable[[Any], Path]


@pytest.fixture
def write_directory(tmp_path: Path) -> WriteDirectory:
    """Return a function that writes a directory file and returns its path."""
    path = tmp_path / "directory.json"

    def write(document: Any) -> Path:
        path.write_text(json.dumps(document), encoding="utf-8")
        return path

    return write
