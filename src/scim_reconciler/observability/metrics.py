"""Prometheus metrics of the service, in the process's default registry.

Every replica and process has its own registry, so Prometheus scrapes each and
sums across them. Label values are bounded: HTTP methods, SCIM resource names,
status codes, change kinds, connector kinds and organization slugs. No label
carries a user id, a userName or a raw request path. The ``organization`` label
grows with the number of organizations, which an operator creates by hand.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

from scim_reconciler.db.models import Run
from scim_reconciler.reconcile.model import Change, ChangeKind, ChangeStatus

PREFIX = "scim_reconciler"

# The *_created series double the output and only record when each series
# was created.
disable_created_metrics()  # type: ignore[no-untyped-call]

# The SCIM endpoints of RFC 7644 section 3.2 that this service routes. Any
# other path is counted as "other".
SCIM_RESOURCES = frozenset(
    {
        "Users",
        "Groups",
        "Me",
        "Bulk",
        ".search",
        "ServiceProviderConfig",
        "ResourceTypes",
        "Schemas",
    }
)
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
AUTH_FAILURE_REASONS = frozenset({"missing", "unknown", "revoked", "expired", "plan"})

scim_requests = Counter(
    f"{PREFIX}_scim_requests",
    "SCIM requests answered, by method, resource and status code.",
    ["method", "resource", "status"],
)
scim_request_seconds = Histogram(
    f"{PREFIX}_scim_request_duration_seconds",
    "Time to answer a SCIM request, in seconds.",
    ["method", "resource"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
token_auth_failures = Counter(
    f"{PREFIX}_token_authentication_failures",
    "SCIM requests rejected for their bearer token: missing, unknown, revoked, "
    "expired, or plan (the organization's plan has no SCIM).",
    ["reason"],
)
runs = Counter(
    f"{PREFIX}_runs",
    "Reconciliation runs finished, by organization and final status.",
    ["organization", "status"],
)
run_seconds = Histogram(
    f"{PREFIX}_run_duration_seconds",
    "Duration of a reconciliation run from start to finish, in seconds.",
    ["status"],
    buckets=(0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
)
changes = Counter(
    f"{PREFIX}_changes",
    "Changes that reconciliation runs planned, by kind and final status "
    "(applied, held, deferred, planned for a dry or paused run).",
    ["kind", "status"],
)
drift = Counter(
    f"{PREFIX}_drift",
    "Changes applied by reconciliation, each a push event that went missing, "
    "by organization. Role changes follow from membership and are not counted.",
    ["organization"],
)
last_run_drift = Gauge(
    f"{PREFIX}_last_run_drift",
    "Drift corrected by the organization's last run in this process.",
    ["organization"],
)
held_deactivations = Gauge(
    f"{PREFIX}_held_deactivations",
    "Deactivations the organization's last run in this process held for an "
    "admin's approval.",
    ["organization"],
)
idp_requests = Counter(
    f"{PREFIX}_idp_requests",
    "HTTP requests sent to an IdP's API, by connector kind and status: the "
    "status code, or 'error' when no response came (timeout, connection).",
    ["connector", "status"],
)
idp_request_seconds = Histogram(
    f"{PREFIX}_idp_request_duration_seconds",
    "Time an IdP took to answer one HTTP request, in seconds.",
    ["connector"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
idp_retries = Counter(
    f"{PREFIX}_idp_retries",
    "IdP requests retried after a timeout, a dropped connection, 429 or 5xx.",
    ["connector"],
)
idp_rate_limited = Counter(
    f"{PREFIX}_idp_rate_limited",
    "IdP responses with status 429 (rate limit exceeded).",
    ["connector"],
)


def scim_resource(route_path: str | None) -> str:
    """Return the SCIM resource a route template names, such as "Users"."""
    if not route_path or not route_path.startswith("/scim/v2/"):
        return "other"
    resource = route_path.removeprefix("/scim/v2/").split("/", 1)[0]
    return resource if resource in SCIM_RESOURCES else "other"


def observe_scim_request(
    method: str, route_path: str | None, status: int, seconds: float
) -> None:
    """Count one SCIM response; ``route_path`` is the matched route template."""
    method = method if method in HTTP_METHODS else "other"
    resource = scim_resource(route_path)
    scim_requests.labels(method, resource, str(status)).inc()
    scim_request_seconds.labels(method, resource).observe(seconds)


def count_auth_failure(reason: str) -> None:
    token_auth_failures.labels(
        reason if reason in AUTH_FAILURE_REASONS else "other"
    ).inc()


# The id of each organization's last run that this process observed, which
# the gauges of the last run describe.
_last_runs: dict[str, str] = {}


def observe_run(organization: str, run: Run, run_changes: Iterable[Change]) -> None:
    """Record a finished run: its status, duration, changes, drift and holds."""
    status = run.status.value
    runs.labels(organization, status).inc()
    if run.finished_at is not None:
        elapsed = (run.finished_at - run.started_at).total_seconds()
        run_seconds.labels(status).observe(max(elapsed, 0.0))
    held = 0
    for change in run_changes:
        changes.labels(change.kind.value, change.status.value).inc()
        if _is_held_deactivation(change):
            held += 1
    drift.labels(organization).inc(run.drift)
    last_run_drift.labels(organization).set(run.drift)
    held_deactivations.labels(organization).set(held)
    _last_runs[organization] = run.id


def observe_approval(
    organization: str,
    run: Run,
    approved: Iterable[Change],
    added_drift: int,
    run_changes: Iterable[Change],
) -> None:
    """Record the approval of a run's held changes.

    ``approved`` are the results of the changes that the approval applied, and
    ``run_changes`` all of the run's changes afterwards. When the run is the
    organization's last one in this process, its gauges follow the approval;
    a later run's gauges describe that run instead.
    """
    for change in approved:
        changes.labels(change.kind.value, change.status.value).inc()
    drift.labels(organization).inc(added_drift)
    if _last_runs.get(organization) != run.id:
        return
    last_run_drift.labels(organization).set(run.drift)
    still_held = sum(1 for change in run_changes if _is_held_deactivation(change))
    held_deactivations.labels(organization).set(still_held)


def _is_held_deactivation(change: Change) -> bool:
    return change.kind is ChangeKind.deactivate and change.status is ChangeStatus.held


def observe_idp_request(
    connector: str, status_code: int | None, seconds: float
) -> None:
    """Count one HTTP request to an IdP; ``status_code`` is None without a response.

    Connectors call this once per attempt, retries included.
    """
    status = "error" if status_code is None else str(status_code)
    idp_requests.labels(connector, status).inc()
    idp_request_seconds.labels(connector).observe(seconds)
    if status_code == 429:
        idp_rate_limited.labels(connector).inc()


def count_idp_retry(connector: str) -> None:
    """Count one retry of an IdP request, whatever made it necessary."""
    idp_retries.labels(connector).inc()
