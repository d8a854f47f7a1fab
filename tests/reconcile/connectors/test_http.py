"""The shared IdP HTTP layer: rate-limit budget, retry bounds, paging links
and the registered kinds' configuration."""

from __future__ import annotations

import dataclasses
import email.utils

import httpx
import pytest

from scim_reconciler.errors import ConnectorUnavailableError, InvalidInputError
from scim_reconciler.reconcile import secrets
from scim_reconciler.reconcile.connectors.http import (
    HttpSettings,
    IdpHttp,
    RetrySettings,
)
from scim_reconciler.reconcile.connectors.profile import (
    IdpProfile,
    RateLimit,
    path_template,
    retry_after_header,
)
from scim_reconciler.reconcile.connectors.ratelimit import RateLimitBudget
from scim_reconciler.reconcile.connectors.registry import (
    build_connector,
    masked,
    parse_config,
)
from tests.support.idp import FakeClock


def budget(
    clock: FakeClock, share: float = 0.5, max_wait: float = 60
) -> RateLimitBudget:
    return RateLimitBudget(
        "Test IdP",
        share=share,
        max_wait_seconds=max_wait,
        clock=clock.time,
        sleep=clock.sleep,
    )


async def test_budget_without_headers_never_waits() -> None:
    clock = FakeClock()
    limiter = budget(clock)

    for _ in range(1000):
        await limiter.wait_turn("bucket")

    assert clock.sleeps == []


async def test_budget_uses_share_of_remaining_then_waits() -> None:
    clock = FakeClock()
    limiter = budget(clock, share=0.5)
    limiter.record("b", RateLimit(remaining=20, reset_at=clock.now + 30))

    for _ in range(10):
        await limiter.wait_turn("b")
    assert clock.sleeps == []

    await limiter.wait_turn("b")
    assert clock.sleeps == [30]


async def test_budget_counts_other_integrations_use() -> None:
    """Requests others make shrink what is left, and so the run's part."""
    clock = FakeClock()
    limiter = budget(clock, share=0.5)
    limiter.record("b", RateLimit(remaining=100, reset_at=clock.now + 30))

    limiter.record("b", RateLimit(remaining=50, reset_at=clock.now + 30))
    await limiter.wait_turn("b")

    assert clock.sleeps == [30]


async def test_budget_buckets_are_separate() -> None:
    clock = FakeClock()
    limiter = budget(clock)
    limiter.record("groups", RateLimit(remaining=0, reset_at=clock.now + 30))

    await limiter.wait_turn("users")

    assert clock.sleeps == []


async def test_budget_fails_when_reset_is_too_far() -> None:
    clock = FakeClock()
    limiter = budget(clock, max_wait=60)
    limiter.record("b", RateLimit(remaining=0, reset_at=clock.now + 1200))

    with pytest.raises(ConnectorUnavailableError) as raised:
        await limiter.wait_turn("b")

    assert "resets in 1200 s" in str(raised.value)
    assert "rate_limit_share" in str(raised.value)
    assert clock.sleeps == []


async def test_budget_new_window_after_reset() -> None:
    clock = FakeClock()
    limiter = budget(clock)
    limiter.record("b", RateLimit(remaining=0, reset_at=clock.now + 10))
    clock.advance(11)

    await limiter.wait_turn("b")

    assert clock.sleeps == []


def test_budget_share_must_be_a_fraction() -> None:
    with pytest.raises(ValueError, match="share"):
        budget(FakeClock(), share=1.5)


def test_retry_settings_are_frozen() -> None:
    settings = RetrySettings()

    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.max_attempts = 1  # type: ignore[misc]


def test_retry_after_parses_seconds_and_dates() -> None:
    now = 1_800_000_000.0
    seconds = httpx.Response(429, headers={"Retry-After": "2.5"})
    later = email.utils.formatdate(now + 10, usegmt=True)
    date = httpx.Response(429, headers={"Retry-After": later})
    missing = httpx.Response(429)

    assert retry_after_header(seconds, now) == 2.5
    assert retry_after_header(date, now) == 10
    assert retry_after_header(missing, now) is None


def test_path_template_hides_ids() -> None:
    url = httpx.URL("https://acme.okta.com/api/v1/groups/00g1emaKYZTWRYYRRTSK/users")

    assert path_template(url) == "/api/v1/groups/{id}/users"


async def test_same_origin_keeps_links_on_base_url() -> None:
    async with httpx.AsyncClient() as client:
        http = IdpHttp(IdpProfile(), client, HttpSettings())
        base = httpx.URL("http://127.0.0.1:8080/v1.0/")

        same = http.same_origin("http://127.0.0.1:8080/v1.0/x?$skiptoken=a", base)
        other = http.same_origin("https://graph.example/v1.0/x?$skiptoken=a", base)

    assert same == httpx.URL("http://127.0.0.1:8080/v1.0/x?$skiptoken=a")
    assert other == httpx.URL("http://127.0.0.1:8080/v1.0/x?$skiptoken=a")


def test_registry_seals_okta_token() -> None:
    key = secrets.new_key()
    raw = {"kind": "okta", "base_url": "https://acme.okta.com", "api_token": "tok"}

    parsed = parse_config(raw, key)

    assert set(parsed.config["api_token"]) == {"encrypted"}
    assert masked("okta", parsed.config)["api_token"] == "encrypted:****"
    assert parsed.config["page_size"] == 1000
    assert parsed.config["rate_limit_share"] == 0.5


def test_registry_rejects_unknown_key() -> None:
    raw = {
        "kind": "entra",
        "tenant_id": "t",
        "client_id": "c",
        "client_secret": {"env": "S"},
        "tenant": "x",
    }

    with pytest.raises(InvalidInputError, match="unknown key 'tenant' for kind entra"):
        parse_config(raw, None)


def test_registry_accepts_onelogin_env_secret() -> None:
    raw = {
        "kind": "onelogin",
        "subdomain": "acme",
        "client_id": "c",
        "client_secret": {"env": "ONELOGIN_SECRET"},
    }

    parsed = parse_config(raw, None)

    assert parsed.config["client_secret"] == {"env": "ONELOGIN_SECRET"}


def test_registry_requires_okta_credential() -> None:
    raw = {"kind": "okta", "base_url": "https://acme.okta.com"}

    with pytest.raises(InvalidInputError, match="give api_token"):
        parse_config(raw, None)


@pytest.mark.parametrize(
    ("raw", "secret_names"),
    [
        (
            {"kind": "okta", "base_url": "https://acme.okta.com", "api_token": "t"},
            {"api_token"},
        ),
        (
            {
                "kind": "entra",
                "tenant_id": "t",
                "client_id": "c",
                "client_secret": "s",
            },
            {"client_secret"},
        ),
        (
            {
                "kind": "onelogin",
                "region": "us",
                "client_id": "c",
                "client_secret": "s",
            },
            {"client_secret"},
        ),
    ],
)
async def test_registry_stores_and_builds_kind(
    raw: dict[str, str], secret_names: set[str]
) -> None:
    """Only the secrets given are stored, so the stored config builds again."""
    key = secrets.new_key()

    parsed = parse_config(raw, key)
    connector = build_connector(parsed.kind, parsed.config, key)
    await connector.close()

    stored_secrets = {
        name for name, value in parsed.config.items() if isinstance(value, dict)
    }
    assert stored_secrets == secret_names
    assert connector.kind == raw["kind"]
