"""Configuration keys of the IdP API connectors (kinds okta, entra, onelogin).

Each kind's README under ``connectors/`` at the repository root explains the
keys with an example. Secret keys (``api_token``, ``private_key``,
``client_secret``, ``client_certificate``) are sealed before validation, so
here they only need to be present. They are excluded from ``model_dump``: the
registry stores only the sealed form of the secrets that were given.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


def _check_http_url(value: str | None, key: str) -> str | None:
    if value is None:
        return None
    if not value.startswith(("https://", "http://")):
        raise ValueError(f"{key} must start with https:// (or http:// for a simulator)")
    return value.rstrip("/")


class IdpApiSettings(BaseModel):
    """Timeouts, retries, concurrency and rate-limit budget of every IdP kind."""

    model_config = ConfigDict(extra="forbid")

    connect_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    read_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    max_attempts: int = Field(default=5, ge=1, le=20)
    max_retry_seconds: float = Field(default=120.0, ge=0, le=3600)
    max_concurrency: int = Field(default=4, ge=1, le=32)
    rate_limit_share: float = Field(default=0.5, gt=0, le=1)
    max_rate_limit_wait_seconds: float = Field(default=60.0, ge=0, le=3600)


class OktaSettings(IdpApiSettings):
    base_url: str = Field(
        description="Okta org URL, e.g. https://acme.okta.com (or a proxy).",
    )
    api_token: str | None = Field(
        default=None, exclude=True, description="SSWS API token."
    )
    client_id: str | None = Field(
        default=None, description="Client id of an OAuth service app."
    )
    private_key: str | None = Field(
        default=None,
        exclude=True,
        description="The service app's RSA private key, PEM or JWK.",
    )
    key_id: str | None = Field(
        default=None, description="kid of the service app's public key in Okta."
    )
    scopes: list[str] = Field(
        default_factory=lambda: ["okta.groups.read", "okta.users.read"]
    )
    # NOTE: 1000 is Okta's documented default page size of group members.
    # Whether Okta accepts larger pages has not been checked.
    page_size: int = Field(default=1000, ge=1, le=1000)
    # STAGED and PROVISIONED users have not activated yet. They count as
    # active only if the organization wants accounts ready before first login.
    staged_is_active: bool = False
    provisioned_is_active: bool = False

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        checked = _check_http_url(value, "base_url")
        assert checked is not None
        return checked

    @model_validator(mode="after")
    def _one_credential(self) -> Self:
        oauth = self.client_id is not None or self.private_key is not None
        if self.api_token is not None and oauth:
            raise ValueError(
                "give either api_token or client_id with private_key, not both"
            )
        if self.api_token is None and (
            self.client_id is None or self.private_key is None
        ):
            raise ValueError(
                "give api_token (an SSWS token), or client_id and private_key "
                "(an OAuth service app)"
            )
        return self


class EntraSettings(IdpApiSettings):
    tenant_id: str = Field(min_length=1, description="Directory (tenant) id.")
    client_id: str = Field(min_length=1, description="Application (client) id.")
    client_secret: str | None = Field(default=None, exclude=True)
    client_certificate: str | None = Field(
        default=None,
        exclude=True,
        description="PEM text with the certificate and its private key.",
    )
    base_url: str = "https://graph.microsoft.com/v1.0"
    login_url: str = "https://login.microsoftonline.com"
    scope: str = "https://graph.microsoft.com/.default"
    # transitive also lists the members of nested groups. direct lists nested
    # groups as non-user members, which the run skips and counts.
    membership: Literal["transitive", "direct"] = "transitive"
    # Microsoft Graph allows $top up to 999 on group members.
    page_size: int = Field(default=999, ge=1, le=999)

    @field_validator("base_url", "login_url")
    @classmethod
    def _urls(cls, value: str) -> str:
        checked = _check_http_url(value, "base_url and login_url")
        assert checked is not None
        return checked

    @model_validator(mode="after")
    def _one_credential(self) -> Self:
        if (self.client_secret is None) == (self.client_certificate is None):
            raise ValueError("give exactly one of client_secret and client_certificate")
        return self


class OneLoginSettings(IdpApiSettings):
    client_id: str = Field(min_length=1)
    client_secret: str | None = Field(default=None, exclude=True)
    subdomain: str | None = Field(
        default=None, description="acme for https://acme.onelogin.com."
    )
    region: Literal["us", "eu"] | None = Field(
        default=None, description="Shared API host api.us or api.eu.onelogin.com."
    )
    base_url: str | None = None
    # OneLogin allows limit up to 100 on role users and users.
    page_size: int = Field(default=100, ge=1, le=100)
    # Status 0 (unactivated) and 7 (password pending): the user has never
    # logged in. Counted as active only if the organization wants that.
    unactivated_is_active: bool = False
    password_pending_is_active: bool = False

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        return _check_http_url(value, "base_url")

    @field_validator("subdomain")
    @classmethod
    def _subdomain(cls, value: str | None) -> str | None:
        if value is not None and not value.replace("-", "").isalnum():
            raise ValueError(
                "subdomain must be the first label only, e.g. acme for "
                "https://acme.onelogin.com"
            )
        return value

    @model_validator(mode="after")
    def _api_host(self) -> Self:
        if self.client_secret is None:
            raise ValueError("client_secret is required")
        if self.base_url is None and self.subdomain is None and self.region is None:
            raise ValueError("give subdomain (or region, or base_url)")
        return self

    def api_base_url(self) -> str:
        """Return base_url if given, else the subdomain's or the region's host."""
        if self.base_url is not None:
            return self.base_url
        if self.subdomain is not None:
            return f"https://{self.subdomain}.onelogin.com"
        return f"https://api.{self.region}.onelogin.com"
