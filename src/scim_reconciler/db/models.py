"""Tables of the store.

Users and groups keep their whole SCIM document in ``attributes`` and copy the
attributes that filters and uniqueness need into indexed columns. Keys ending in
``_key`` hold the case-folded form that comparisons use.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from scim_reconciler.services.roles import Grant


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC, also on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use UTC-aware values")
        if value is not None and dialect.name == "sqlite":
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[str]: JSON,
    }


class Plan(enum.StrEnum):
    free = "free"
    starter = "starter"
    professional = "professional"
    enterprise = "enterprise"

    @property
    def allows_scim(self) -> bool:
        return self in (Plan.professional, Plan.enterprise)


class ManagedBy(enum.StrEnum):
    """Owner of a dashboard user: the IdP, or a person who created it by hand."""

    idp = "idp"
    person = "person"


class Source(enum.StrEnum):
    """Origin of a change, as recorded in the audit log."""

    scim = "scim"
    reconcile = "reconcile"
    admin = "admin"


def _enum(cls: type[enum.Enum]) -> Enum:
    # Stored as plain strings so that adding a member needs no database type change.
    return Enum(cls, native_enum=False, length=32, validate_strings=True)


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    plan: Mapped[Plan] = mapped_column(_enum(Plan))
    created_at: Mapped[datetime]


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("org_id", "user_name_key", name="uq_users_org_user_name"),
        UniqueConstraint("org_id", "external_id", name="uq_users_org_external_id"),
        Index("ix_users_org_display_name", "org_id", "display_name_key"),
        Index("ix_users_org_last_modified", "org_id", "last_modified"),
        Index("ix_users_org_active", "org_id", "active"),
        # Serves SCIM list pages: an org's visible users (the filter of every
        # SCIM read) in id order, and a COUNT of them that scans only the index.
        Index("ix_users_org_visible_id", "org_id", "managed_by", "deleted", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    user_name: Mapped[str] = mapped_column(String(256))
    user_name_key: Mapped[str] = mapped_column(String(256))
    external_id: Mapped[str | None] = mapped_column(String(256))
    display_name: Mapped[str | None] = mapped_column(String(256))
    display_name_key: Mapped[str | None] = mapped_column(String(256))
    given_name: Mapped[str | None] = mapped_column(String(256))
    family_name: Mapped[str | None] = mapped_column(String(256))
    email: Mapped[str | None] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(Boolean)
    # A user deleted over SCIM is hidden but kept, inactive, for audit and return.
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    managed_by: Mapped[ManagedBy] = mapped_column(_enum(ManagedBy))
    attributes: Mapped[dict[str, Any]]
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    last_modified: Mapped[datetime]


class UserEmail(Base):
    """One entry of a user's ``emails``, kept for ``emails.value`` filters."""

    __tablename__ = "user_emails"
    __table_args__ = (Index("ix_user_emails_org_value", "org_id", "value_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    value_key: Mapped[str] = mapped_column(String(256))
    type: Mapped[str | None] = mapped_column(String(64))
    primary: Mapped[bool] = mapped_column(Boolean, default=False)


class Group(Base):
    __tablename__ = "groups"
    __table_args__ = (
        UniqueConstraint("org_id", "display_name_key", name="uq_groups_org_name"),
        UniqueConstraint("org_id", "external_id", name="uq_groups_org_external_id"),
        Index("ix_groups_org_last_modified", "org_id", "last_modified"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    display_name: Mapped[str] = mapped_column(String(256))
    display_name_key: Mapped[str] = mapped_column(String(256))
    external_id: Mapped[str | None] = mapped_column(String(256))
    attributes: Mapped[dict[str, Any]]
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    last_modified: Mapped[datetime]


class GroupMember(Base):
    """Membership of a user in a group; one row each, so concurrent edits merge."""

    __tablename__ = "group_members"
    __table_args__ = (Index("ix_group_members_user", "user_id"),)

    group_id: Mapped[str] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    # The member's display as the IdP sent it; SCIM returns it unchanged.
    display: Mapped[str | None] = mapped_column(String(256))


class Role(Base):
    """A dashboard role of the catalog, kept in line with the settings at start."""

    __tablename__ = "roles"

    slug: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


class RoleMapping(Base):
    """Grants a role to the members of an IdP group, named by externalId or name."""

    __tablename__ = "role_mappings"
    __table_args__ = (
        UniqueConstraint("org_id", "group_key", "role_slug", name="uq_role_mappings"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    group: Mapped[str] = mapped_column(String(256))
    group_key: Mapped[str] = mapped_column(String(256))
    role_slug: Mapped[str] = mapped_column(ForeignKey("roles.slug"))
    grant: Mapped[Grant] = mapped_column(_enum(Grant))
    object_ids: Mapped[list[str]]
    created_at: Mapped[datetime]


class ScimToken(Base):
    __tablename__ = "scim_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # SHA-256 of the secret. The secret has 256 random bits, so a slow hash adds
    # nothing.
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class AdminCredential(Base):
    """A secret that signs an organization's administrator in to the admin API
    and console, for that organization only."""

    __tablename__ = "admin_credentials"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # SHA-256 of a secret with 256 random bits, as for SCIM tokens.
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class AdminSession(Base):
    """A console session. The cookie contains a secret whose hash is the id."""

    __tablename__ = "admin_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(256))
    # The organization of an organization admin; null for operators.
    org_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    # The credential or operator key hash that signed in, so that revoking the
    # credential or removing the key from the settings ends the session.
    credential_id: Mapped[str | None] = mapped_column(String(36))
    key_hash: Mapped[str | None] = mapped_column(String(71))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_org_at", "org_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    at: Mapped[datetime]
    source: Mapped[Source] = mapped_column(_enum(Source))
    action: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str | None] = mapped_column(String(64), index=True)
    actor: Mapped[str | None] = mapped_column(String(256))
    run_id: Mapped[str | None] = mapped_column(String(36))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    summary: Mapped[str | None] = mapped_column(Text)


class ConnectorConfig(Base):
    """Connector settings of an organization: how and when to read its IdP, and
    the limits of its runs."""

    __tablename__ = "connectors"

    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    # Non-secret settings; a secret appears only as a reference
    # ({"env": NAME} or {"file": PATH}) or as {"encrypted": TOKEN}.
    config: Mapped[dict[str, Any]]
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    interval_seconds: Mapped[int] = mapped_column(Integer, default=3600)
    jitter_seconds: Mapped[int] = mapped_column(Integer, default=300)
    max_deactivations: Mapped[int] = mapped_column(Integer, default=25)
    max_deactivation_percent: Mapped[float] = mapped_column(default=10.0)
    last_check_at: Mapped[datetime | None]
    last_check_problems: Mapped[list[str] | None]
    updated_at: Mapped[datetime]


class RunStatus(enum.StrEnum):
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    held = "held"
    paused = "paused"
    interrupted = "interrupted"


class RunTrigger(enum.StrEnum):
    schedule = "schedule"
    manual = "manual"
    api = "api"


class RunMode(enum.StrEnum):
    dry_run = "dry_run"
    apply = "apply"


class Run(Base):
    """One reconciliation of one organization, with its plan and outcome."""

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_org_started", "org_id", "started_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    trigger: Mapped[RunTrigger] = mapped_column(_enum(RunTrigger))
    mode: Mapped[RunMode] = mapped_column(_enum(RunMode))
    status: Mapped[RunStatus] = mapped_column(_enum(RunStatus), index=True)
    scope: Mapped[dict[str, Any]]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    counts: Mapped[dict[str, Any]]
    # Changes applied by this run: each one a push event that went missing.
    drift: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[dict[str, Any]]
    owner: Mapped[str | None] = mapped_column(String(200))


class RunChange(Base):
    """One change of a run's plan, its reason and what became of it."""

    __tablename__ = "run_changes"
    __table_args__ = (Index("ix_run_changes_run_status", "run_id", "status"),)

    run_id: Mapped[str] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str | None] = mapped_column(String(36))
    user_name: Mapped[str] = mapped_column(String(256))
    external_id: Mapped[str | None] = mapped_column(String(256))
    reason: Mapped[str] = mapped_column(Text)
    hold_reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]]
