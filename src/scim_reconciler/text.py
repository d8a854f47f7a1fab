"""String comparison forms shared by the store, SCIM filters and mappings."""

from unicodedata import normalize


def comparison_key(value: str) -> str:
    """Return the case-folded NFC form that case-insensitive comparisons use.

    It matches scim2-models' default comparison key, so a userName compared in a
    filter, in a uniqueness check and in the reconciler gives the same answer.
    """
    return normalize("NFC", normalize("NFC", value).lower())
