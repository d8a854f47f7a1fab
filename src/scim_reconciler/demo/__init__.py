"""A small demo organization: directory file, mappings and first reconciliation.

``scim-reconciler demo`` uses it so that a first trial shows a real run without
an IdP account: the directory file stands in for the IdP, and editing it between
runs mimics changes whose push went missing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DEMO_ORG = "demo"

# (IdP id, userName, given name, family name, active)
_PEOPLE = (
    ("00u1", "ada.lovelace@example.com", "Ada", "Lovelace", True),
    ("00u2", "grace.hopper@example.com", "Grace", "Hopper", True),
    ("00u3", "alan.turing@example.com", "Alan", "Turing", True),
    ("00u4", "katherine.johnson@example.com", "Katherine", "Johnson", True),
    ("00u5", "edsger.dijkstra@example.com", "Edsger", "Dijkstra", True),
    ("00u6", "barbara.liskov@example.com", "Barbara", "Liskov", True),
    ("00u7", "john.backus@example.com", "John", "Backus", False),
)

# (IdP id, name, members)
_GROUPS = (
    ("00g1", "Dashboard Admins", ("00u1", "00u2")),
    ("00g2", "Analysts", ("00u3", "00u4", "00u7")),
    ("00g3", "Course Authors", ("00u2", "00u5", "00u6")),
    ("00g4", "All Staff", ("00u1", "00u2", "00u3", "00u4", "00u5", "00u6")),
)

# (group name, role slug, limited to these object ids or None for a full grant)
MAPPINGS: tuple[tuple[str, str, list[str] | None], ...] = (
    ("Dashboard Admins", "global_admin", None),
    ("Analysts", "analytics_admin", None),
    ("Course Authors", "course_management_admin", ["course-101", "course-202"]),
)


def directory() -> dict[str, Any]:
    """Return the demo IdP as a directory file document."""
    users = [
        {
            "id": idp_id,
            "userName": user_name,
            "email": user_name,
            "givenName": given,
            "familyName": family,
            "active": active,
        }
        for idp_id, user_name, given, family, active in _PEOPLE
    ]
    groups = [
        {"id": idp_id, "name": name, "members": list(members)}
        for idp_id, name, members in _GROUPS
    ]
    return {"users": users, "groups": groups}


def write_directory(path: Path) -> None:
    path.write_text(json.dumps(directory(), indent=2) + "\n")
