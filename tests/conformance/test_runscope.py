"""The Runscope runner's paths and comparisons, without a server.

Runscope reads JSON properties as JavaScript paths and compares values as
its assertion documentation describes. The Okta spec test's known failure
depends on both.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance.runscope import MISSING, compare, resolve, substitute

DOCUMENT: dict[str, Any] = {
    "Resources": [
        {
            "active": False,
            "emails": [{"value": "ada@example.com"}],
            "name": {"givenName": "Ada"},
        }
    ],
    "totalResults": 0,
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("Resources[0].name.givenName", "Ada"),
        ("Resources[0].emails[0].value", "ada@example.com"),
        ("Resources[0].active", False),
        ("totalResults", 0),
    ],
)
def test_resolve_follows_javascript_paths(path: str, expected: Any) -> None:
    assert resolve(DOCUMENT, path) == expected


@pytest.mark.parametrize(
    "path",
    ["Resources[0].emails.value", "Resources[1].name", "missing", "totalResults.x"],
)
def test_resolve_missing_path_is_undefined(path: str) -> None:
    """A property of a list, like JavaScript's ``[].value``, is undefined."""
    assert resolve(DOCUMENT, path) is MISSING


@pytest.mark.parametrize(
    ("comparison", "actual", "target", "expected"),
    [
        ("not_empty", False, None, True),
        ("not_empty", 0, None, True),
        ("not_empty", "", None, False),
        ("not_empty", [], None, False),
        ("not_empty", MISSING, None, False),
        ("equal", True, "true", True),
        ("equal", 0, "0", True),
        ("equal", "Ada", "ada", False),
        ("equal_number", 200, "200", True),
        ("equal_number", "x", "200", False),
        ("is_a_number", 1, None, True),
        ("is_a_number", "1", None, False),
        ("is_a_number", True, None, False),
        ("is_less_than", 12.5, "400", True),
        ("has_value", ["a", "b"], "b", True),
        ("has_value", MISSING, None, False),
        ("contains", ["urn:a", "urn:b"], "urn:b", True),
        ("contains", "application/scim+json", "scim", True),
    ],
)
def test_compare_follows_runscope(
    comparison: str, actual: Any, target: str | None, expected: bool
) -> None:
    assert compare(comparison, actual, target) is expected


def test_compare_unknown_comparison_raises() -> None:
    with pytest.raises(ValueError, match="not supported"):
        compare("matches_regex", "a", "a")


def test_substitute_leaves_unknown_variables() -> None:
    filled = substitute("{{base}}/Users/{{id}}", {"base": "http://127.0.0.1:1"})
    assert filled == "http://127.0.0.1:1/Users/{{id}}"
