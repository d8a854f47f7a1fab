"""Parsing of the simulator's ``--fault`` specs and when a fault fires."""

from __future__ import annotations

import pytest

from scim_reconciler.simulator.faults import FaultPlan, FaultSpecError, parse_fault


def test_parse_status_with_target_and_options() -> None:
    fault = parse_fault("503@members,page=2,after=1,times=3")

    assert fault.status == 503
    assert fault.target == "members"
    assert fault.page == 2
    assert fault.after == 1
    assert fault.times == 3


def test_parse_defaults() -> None:
    fault = parse_fault("timeout")

    assert fault.status is None
    assert fault.target == "members"
    assert fault.page is None
    assert fault.times is None
    assert fault.delay_ms == 60_000


def test_parse_slow_delay() -> None:
    assert parse_fault("slow@any,ms=250").delay_ms == 250


def test_parse_empty_list() -> None:
    fault = parse_fault("empty-list@members,page=1")

    assert fault.kind == "empty-list"
    assert fault.status is None
    assert fault.page == 1


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("200", "from 400 to 599"),
        ("explode", "kind 'explode' is not known"),
        ("503@everything", "target 'everything' is not known"),
        ("503,page=two", "whole number"),
        ("503,color=1", "option 'color=1' is not known"),
        ("503,page=0", "option 'page=0' is not known"),
    ],
)
def test_parse_rejects_bad_spec(spec: str, message: str) -> None:
    with pytest.raises(FaultSpecError, match=message):
        parse_fault(spec)


def test_fault_fires_on_its_page_only() -> None:
    plan = FaultPlan.parse(["500@members,page=2"])

    assert plan.pick("members", 1) is None
    assert plan.pick("members", 2) is not None
    assert plan.pick("users", 2) is None
    assert plan.pick("members", 2) is not None


def test_fault_after_and_times() -> None:
    plan = FaultPlan.parse(["429@any,after=1,times=2"])

    fired = [plan.pick("token") is not None for _ in range(5)]

    assert fired == [False, True, True, False, False]
