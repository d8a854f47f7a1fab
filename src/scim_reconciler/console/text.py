"""Counted nouns in page text: "1 run", "2 runs"."""

from __future__ import annotations


def counted(number: int, singular: str, plural: str | None = None) -> str:
    """Return the number followed by its noun, singular only for exactly 1.

    The plural defaults to the singular with "s" added.
    """
    noun = singular if number == 1 else (plural or f"{singular}s")
    return f"{number} {noun}"
