"""Request and response bodies of the admin API.

Field names are snake_case, as in the command line's ``--json`` output. Times
are UTC in ISO 8601. Request bodies reject unknown fields, so a misspelt field
is an error instead of a silently ignored value.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Generic, Literal, Self, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)

from scim_reconciler.db.models import Plan, RunMode, RunStatus, RunTrigger, Source
from scim_reconciler.reconcile.model import ChangeKind, ChangeStatus
from scim_reconciler.services.roles import Grant
from scim_reconciler.services.tokens import MAX_EXPIRY_DAYS

T = TypeVar("T")

MAX_RUN_WAIT_SECONDS = 30.0
# Maximum length of an object id of a limited grant, as of a group reference.
MAX_OBJECT_ID_LENGTH = 256


class RequestBody(BaseModel):
    """A request body. Its number and boolean fields use pydantic's strict types,
    so a JSON string or boolean where a number belongs is rejected, not
    converted: a client that sends ``true`` for a count of days has a bug."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after", check_fields=False)
    @classmethod
    def _reject_nul(cls, value: Any) -> Any:
        # PostgreSQL text cannot store U+0000, and no name or id contains it.
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(text, str) and "\x00" in text for text in texts):
            raise ValueError("contains a NUL character (U+0000): remove it")
        return value


class Page(BaseModel, Generic[T]):
    """One page of a list, in the list's stable order."""

    items: list[T]
    total: int = Field(description="Items in the whole list.")
    offset: int = Field(description="Position of the first item in the list.")
    limit: int = Field(description="Maximum number of items per page.")
    next_offset: int | None = Field(
        description="The offset of the next page, or null on the last page."
    )


def page_of(items: list[T], total: int, offset: int, limit: int) -> Page[T]:
    following = offset + len(items)
    return Page[T](
        items=items,
        total=total,
        offset=offset,
        limit=limit,
        next_offset=following if following < total else None,
    )


def slice_page(items: list[T], offset: int, limit: int) -> Page[T]:
    """Return one page of a list that was read whole."""
    return page_of(items[offset : offset + limit], len(items), offset, limit)


class PrincipalOut(BaseModel):
    kind: Literal["operator", "org_admin"]
    name: str = Field(description="The actor that audit events record.")
    organization: str | None = Field(
        description="Slug of an organization admin's organization; null for operators."
    )


# Organizations


class OrganizationOut(BaseModel):
    slug: str
    name: str
    plan: Plan
    scim_enabled: bool = Field(
        description="Whether the plan includes SCIM provisioning (professional "
        "or enterprise)."
    )
    scim_base_url: str = Field(description="The SCIM base URL to give the IdP.")
    created_at: datetime


class OrganizationCreate(RequestBody):
    slug: str = Field(
        pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
        description="1 to 63 lower-case letters, digits and hyphens, starting "
        "with a letter or digit.",
        examples=["acme"],
    )
    name: str = Field(min_length=1, max_length=200, examples=["Acme Corporation"])
    plan: Plan


class OrganizationUpdate(RequestBody):
    plan: Plan


# SCIM tokens and admin credentials


class TokenOut(BaseModel):
    id: str
    name: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    status: Literal["active", "expired", "revoked"]


class NewTokenOut(TokenOut):
    secret: str = Field(
        description="The bearer token for the IdP. Shown only in this response: "
        "only its hash is stored."
    )
    scim_base_url: str


class TokenCreate(RequestBody):
    name: str = Field(min_length=1, max_length=200, examples=["Okta Production"])
    expires_in_days: StrictInt = Field(ge=1, le=MAX_EXPIRY_DAYS, examples=[365])


class CredentialOut(BaseModel):
    id: str
    name: str
    created_by: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    status: Literal["active", "revoked"]


class NewCredentialOut(CredentialOut):
    secret: str = Field(
        description="The organization admin's key for the admin API and console. "
        "Shown only in this response: only its hash is stored."
    )


class CredentialCreate(RequestBody):
    name: str = Field(
        min_length=1,
        max_length=200,
        description="Whose credential it is.",
        examples=["Ada Lovelace"],
    )


# Roles and mappings


class RoleOut(BaseModel):
    slug: str
    name: str


class MappingOut(BaseModel):
    id: int
    group: str = Field(description="The IdP group's externalId or displayName.")
    role: str = Field(description="Slug of the role granted.")
    role_name: str
    grant: Grant
    object_ids: list[str] = Field(
        description="Objects a limited grant covers; empty for a full grant."
    )
    created_at: datetime


class MappingCreate(RequestBody):
    group: str = Field(
        min_length=1,
        max_length=256,
        description="The IdP group's externalId or displayName.",
        examples=["Dashboard Admins"],
    )
    role: str = Field(
        min_length=1, max_length=64, description="Role slug.", examples=["global_admin"]
    )
    grant: Grant = Grant.full
    object_ids: list[Annotated[str, Field(max_length=MAX_OBJECT_ID_LENGTH)]] = Field(
        default_factory=list,
        max_length=1000,
        description="Course, asset or learner group ids; required for a limited "
        "grant, not allowed for a full one.",
    )

    @model_validator(mode="after")
    def _objects_match_grant(self) -> Self:
        given = [item for item in self.object_ids if item.strip()]
        if self.grant is Grant.limited and not given:
            raise ValueError(
                "a limited grant needs at least one object id: give object_ids"
            )
        if self.grant is Grant.full and given:
            raise ValueError(
                "a full grant covers every object: leave object_ids empty, or "
                'give "grant": "limited"'
            )
        return self


# Connector


class ConnectorOut(BaseModel):
    kind: str
    config: dict[str, Any] = Field(
        description="The kind's settings, every secret masked."
    )
    enabled: bool
    interval_seconds: int
    jitter_seconds: int
    max_deactivations: int
    max_deactivation_percent: float
    last_check_at: datetime | None
    last_check_problems: list[str] | None
    updated_at: datetime


class ConnectorIn(BaseModel):
    """A whole connector configuration: ``kind``, the kind's keys and run settings.

    The keys are those of a connector configuration file (docs/configuration.md
    and the README of each kind under connectors/). An organization admin gives
    each secret as its value; references to the service's environment or files,
    and the ``file`` kind, are for operators.
    """

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "kind": "okta",
                    "base_url": "https://acme.okta.com",
                    "api_token": "00aBcD...",
                    "interval_seconds": 3600,
                    "max_deactivations": 25,
                }
            ]
        },
    )

    kind: str = Field(description="okta, entra, onelogin or file.")


class RunSettingsUpdate(RequestBody):
    """Run settings to change; the others, and the IdP settings, stay."""

    enabled: StrictBool | None = None
    interval_seconds: StrictInt | None = None
    jitter_seconds: StrictInt | None = None
    max_deactivations: StrictInt | None = None
    max_deactivation_percent: StrictFloat | None = None


class CheckOut(BaseModel):
    ok: bool
    problems: list[str] = Field(description="Each problem found, with its fix.")
    checked_at: datetime


# Runs


class RunStart(RequestBody):
    dry_run: StrictBool = Field(
        default=False, description="Plan only: record the plan, change nothing."
    )
    user: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="Only this user: an IdP id, account id, externalId or userName.",
    )
    group: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="Only the members of this mapped group: its reference, IdP id "
        "or name.",
    )
    wait_seconds: StrictFloat = Field(
        default=0,
        ge=0,
        le=MAX_RUN_WAIT_SECONDS,
        description="Seconds to wait for the run to finish. A run finished in "
        "time is returned with 200, one still running with 202.",
    )

    @model_validator(mode="after")
    def _one_scope(self) -> Self:
        if self.user is not None and self.group is not None:
            raise ValueError("give user or group, not both")
        return self


class RunScope(BaseModel):
    user: str | None
    group: str | None


class RunOut(BaseModel):
    id: str
    trigger: RunTrigger
    mode: RunMode
    status: RunStatus
    scope: RunScope
    started_at: datetime
    finished_at: datetime | None
    counts: dict[str, int] = Field(description="Changes by kind.")
    counts_by_status: dict[str, int] = Field(description="Changes by status.")
    drift: int = Field(
        description="Applied changes other than role changes: each a push event "
        "that went missing."
    )
    error: str | None


class ChangeOut(BaseModel):
    seq: int = Field(description="Position of the change in the plan.")
    kind: ChangeKind
    status: ChangeStatus
    user_name: str
    user_id: str | None
    external_id: str | None
    reason: str
    hold_reason: str | None
    details: dict[str, Any]


class SkippedOut(BaseModel):
    user_name: str
    reason: str


class RunDetailOut(RunOut):
    warnings: list[str]
    skipped: list[SkippedOut]
    paused_reason: str | None
    changes: Page[ChangeOut] = Field(
        description="One page of the plan, in plan order, filtered as requested."
    )


# Users, audit events, drift


class EffectiveRoleOut(BaseModel):
    role: str
    name: str
    grant: Grant
    object_ids: list[str]


class UserOut(BaseModel):
    id: str
    user_name: str
    display_name: str | None
    email: str | None
    active: bool
    deleted: bool
    managed_by: str = Field(description="idp, or person for a user made by hand.")
    roles: list[EffectiveRoleOut]


class MappingSourceOut(BaseModel):
    id: int
    role: str
    role_name: str
    grant: Grant
    object_ids: list[str]


class GroupSourceOut(BaseModel):
    id: str
    display_name: str
    external_id: str | None
    mappings: list[MappingSourceOut] = Field(
        description="Mappings that grant a role through this group; empty when "
        "the group grants none."
    )


class UserDetailOut(UserOut):
    external_id: str | None
    given_name: str | None
    family_name: str | None
    created_at: datetime
    last_modified: datetime
    groups: list[GroupSourceOut]


class AuditEventOut(BaseModel):
    id: int
    at: datetime
    source: Source
    action: str
    resource_type: str
    resource_id: str | None
    actor: str | None
    run_id: str | None
    details: dict[str, Any]


class DriftDayOut(BaseModel):
    day: date
    drift: int
    runs: int = Field(description="Apply runs that finished that day.")


class DriftOut(BaseModel):
    days: list[DriftDayOut] = Field(description="Oldest first, one per UTC day.")
    total_drift: int
    total_runs: int
