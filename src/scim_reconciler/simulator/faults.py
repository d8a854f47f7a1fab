"""Faults that the IdP simulator injects, parsed from ``--fault SPEC``.

A spec is ``KIND[@TARGET][,OPTION=VALUE...]``:

    KIND     an HTTP status (400-599), sent with the IdP's error body, or
             timeout   respond only after ``ms`` (default 60000), past any
                       sensible read timeout
             slow      respond after ``ms`` (default 1000)
             truncate  cut the JSON body in half
             empty     respond 200 with an empty body
             empty-list
                       respond 200 with a valid listing that has no items
                       and no next page, as if the group had no members (on
                       page 1) or ended early (on a later page). A response
                       that is no listing is sent unchanged.
    TARGET   members (group member listings, the default), users (user
             listings and details), groups (group lookups and searches),
             token (the token endpoint) or any
    OPTIONS  page=N   only the Nth page of a listing (1 is the first)
             after=N  let the first N matching requests through
             times=N  fire at most N times (default: on every match)
             ms=N     delay of timeout and slow, in milliseconds

Examples: ``503@members,page=2`` fails every read of the second page of
every member listing; ``429,times=1`` rate-limits the first member request.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TARGETS = ("members", "users", "groups", "token", "any")
NAMED_KINDS = ("timeout", "slow", "truncate", "empty", "empty-list")
DEFAULT_DELAY_MS = {"timeout": 60_000, "slow": 1_000}


class FaultSpecError(ValueError):
    """A ``--fault`` value that does not follow the spec format."""


@dataclass
class Fault:
    kind: str
    target: str = "members"
    page: int | None = None
    after: int = 0
    times: int | None = None
    delay_ms: int = 0
    # Matching requests seen so far, and how often the fault fired.
    seen: int = field(default=0, compare=False)
    fired: int = field(default=0, compare=False)

    @property
    def status(self) -> int | None:
        return int(self.kind) if self.kind.isdigit() else None

    def matches(self, target: str, page: int | None) -> bool:
        """Count a request and return whether this fault fires on it."""
        if self.target not in ("any", target):
            return False
        if self.page is not None and page != self.page:
            return False
        self.seen += 1
        if self.seen <= self.after:
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        self.fired += 1
        return True


def parse_fault(spec: str) -> Fault:
    """Parse one ``--fault`` value; raises FaultSpecError naming the problem."""
    head, *options = [part.strip() for part in spec.split(",")]
    kind, _, target = head.partition("@")
    kind = kind.lower()
    target = (target or "members").lower()
    if kind.isdigit():
        if not 400 <= int(kind) <= 599:
            raise FaultSpecError(f"fault status {kind} must be from 400 to 599")
    elif kind not in NAMED_KINDS:
        raise FaultSpecError(
            f"fault kind {kind!r} is not known: use an HTTP status or one of "
            + ", ".join(NAMED_KINDS)
        )
    if target not in TARGETS:
        raise FaultSpecError(
            f"fault target {target!r} is not known: use one of " + ", ".join(TARGETS)
        )
    fault = Fault(kind, target, delay_ms=DEFAULT_DELAY_MS.get(kind, 0))
    for option in options:
        name, _, value = option.partition("=")
        if not value.isdigit():
            raise FaultSpecError(
                f"fault option {option!r} must be NAME=N with a whole number N"
            )
        number = int(value)
        if name == "page" and number >= 1:
            fault.page = number
        elif name == "after":
            fault.after = number
        elif name == "times":
            fault.times = number
        elif name == "ms":
            fault.delay_ms = number
        else:
            raise FaultSpecError(
                f"fault option {option!r} is not known: use page=N (from 1), "
                "after=N, times=N or ms=N"
            )
    return fault


@dataclass
class FaultPlan:
    """The faults of one simulator; the first that fires on a request wins."""

    faults: list[Fault] = field(default_factory=list)

    @classmethod
    def parse(cls, specs: list[str] | tuple[str, ...]) -> FaultPlan:
        return cls([parse_fault(spec) for spec in specs])

    def pick(self, target: str, page: int | None = None) -> Fault | None:
        for fault in self.faults:
            if fault.matches(target, page):
                return fault
        return None
