"""Rows that apply writes: user profiles with their emails, audit events, and
the run's record of each change.

Apply writes many rows per batch with one multi-row statement per table, so
these helpers build plain column dictionaries rather than ORM objects.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from scim_reconciler.db.models import Source
from scim_reconciler.reconcile.model import Change
from scim_reconciler.text import comparison_key

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"


def profile_document(
    profile: dict[str, Any], current: dict[str, Any] | None
) -> dict[str, Any]:
    """Return the user's SCIM document with the IdP's profile written into it.

    Attributes the profile does not carry keep their current values; the IdP's
    email becomes the primary work email, and other non-primary emails stay.
    """
    document = dict(current or {"schemas": [USER_SCHEMA]})
    document["userName"] = profile["userName"]
    if profile.get("externalId"):
        document["externalId"] = profile["externalId"]
    name = dict(document.get("name") or {})
    for key in ("givenName", "familyName"):
        if profile.get(key):
            name[key] = profile[key]
        else:
            name.pop(key, None)
    if name:
        document["name"] = name
    else:
        document.pop("name", None)
    if profile.get("displayName"):
        document["displayName"] = profile["displayName"]
    if profile.get("email"):
        others = [
            email
            for email in document.get("emails") or []
            if comparison_key(str(email.get("value", "")))
            != comparison_key(profile["email"])
            and not email.get("primary")
        ]
        document["emails"] = [
            {"value": profile["email"], "type": "work", "primary": True},
            *others,
        ]
    return document


def profile_columns(
    profile: dict[str, Any], document: dict[str, Any], external_id: str | None
) -> dict[str, Any]:
    """Return the users columns that a profile sets, next to its ``document``.

    ``external_id`` is the stored externalId, kept when the profile has none.
    """
    display_name = profile.get("displayName")
    return {
        "attributes": document,
        "user_name": profile["userName"],
        "user_name_key": comparison_key(profile["userName"]),
        "external_id": profile.get("externalId") or external_id,
        "given_name": profile.get("givenName"),
        "family_name": profile.get("familyName"),
        "display_name": display_name,
        "display_name_key": comparison_key(display_name) if display_name else None,
        "email": comparison_key(profile["email"]) if profile.get("email") else None,
    }


def email_rows(
    user_id: str, org_id: int, document: dict[str, Any]
) -> list[dict[str, Any]]:
    """Return the user_emails rows of a user's SCIM document."""
    return [
        {
            "user_id": user_id,
            "org_id": org_id,
            "value_key": comparison_key(str(email["value"])),
            "type": comparison_key(email["type"]) if email.get("type") else None,
            "primary": bool(email.get("primary")),
        }
        for email in document.get("emails") or []
        if email.get("value")
    ]


def audit_row(
    *,
    org_id: int,
    at: datetime,
    action: str,
    user_id: str | None,
    actor: str,
    run_id: str,
    details: dict[str, Any],
) -> dict[str, Any]:
    """Return the audit_events row of one change a run applied to a user."""
    return {
        "org_id": org_id,
        "at": at,
        "source": Source.reconcile,
        "action": action,
        "resource_type": "User",
        "resource_id": user_id,
        "actor": actor,
        "run_id": run_id,
        "details": details,
    }


def run_change_row(
    run_id: str, seq: int, change: Change, reason: str, details: dict[str, Any]
) -> dict[str, Any]:
    """Return the run_changes row of the change at position ``seq`` of a plan.

    ``reason`` and ``details`` are the change's, passed in so that a batch
    builds them once for the row and the audit event.
    """
    return {
        "run_id": run_id,
        "seq": seq,
        "kind": change.kind.value,
        "status": change.status.value,
        "user_id": change.user_id,
        "user_name": change.user_name,
        "external_id": change.external_id,
        "reason": reason,
        "hold_reason": change.hold_reason,
        "details": {
            "data": details,
            "_expected_version": change.expected_version,
            "_group_versions": dict(change.group_versions),
        },
    }
