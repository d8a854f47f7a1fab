"""Limits on the text that the store copies into indexed columns.

PostgreSQL rejects a value longer than its VARCHAR column, or one containing a
NUL character, while SQLite keeps both. Checking before the write makes both
databases return the same 400 ``invalidValue`` that names the attribute.
"""

from __future__ import annotations

from scim2_models import InvalidValueException

from scim_reconciler.text import comparison_key

# Lengths of the VARCHAR columns in scim_reconciler.db.models.
MAX_TEXT_LENGTH = 256
MAX_EMAIL_TYPE_LENGTH = 64


def is_storable(value: str) -> bool:
    """Tell whether PostgreSQL can take ``value``, even as a query parameter."""
    return "\x00" not in value


def check_text(attribute: str, value: str | None, limit: int = MAX_TEXT_LENGTH) -> None:
    """Raise invalidValue unless ``value`` and its comparison key fit the column."""
    if value is None:
        return
    if not is_storable(value):
        raise InvalidValueException(
            detail=f"{attribute} contains a NUL character (U+0000); remove it"
        )
    # Case folding can lengthen a string ("İ" folds to two characters), and the
    # folded form is stored as well.
    length = max(len(value), len(comparison_key(value)))
    if length > limit:
        raise InvalidValueException(
            detail=f"{attribute} is {length} characters long; the limit is {limit}"
        )


def check_required_text(attribute: str, value: str | None) -> None:
    """Run check_text, and also reject a value that is missing or blank.

    A blank userName or displayName identifies no user or group, so it is as
    invalid as a missing one.
    """
    if value is None or not value.strip():
        raise InvalidValueException(
            detail=f"{attribute} is required and must not be empty or blank"
        )
    check_text(attribute, value)
