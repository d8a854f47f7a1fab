"""The simulator's latency is the time from a request's arrival to its
response, the simulator's own work included."""

from __future__ import annotations

from pathlib import Path

import httpx

from scim_reconciler.simulator.base import SimulatorOptions
from scim_reconciler.simulator.server import make_simulator
from tests.support.idp import numbered_users, write_directory


def directory(tmp_path: Path) -> Path:
    users = numbered_users(3)
    groups = [{"id": "00g1", "name": "Admins", "members": ["u1", "u2", "u3"]}]
    return write_directory(tmp_path / "directory.json", users, groups)


async def test_latency_counts_the_simulators_own_work(tmp_path: Path) -> None:
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    simulator = make_simulator(
        "okta",
        directory(tmp_path),
        SimulatorOptions(latency_ms=500),
        sleep=record,
    )
    config = simulator.connector_config("http://127.0.0.1:1")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=simulator.app()),
        base_url="http://127.0.0.1:1",
    ) as client:
        response = await client.get(
            "/api/v1/groups/00g1/users",
            headers={"Authorization": f"SSWS {config['api_token']}"},
        )

    assert response.status_code == 200
    assert len(response.json()) == 3
    assert len(waits) == 1
    assert 0 < waits[0] < 0.5


async def test_no_latency_no_wait(tmp_path: Path) -> None:
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    simulator = make_simulator(
        "okta", directory(tmp_path), SimulatorOptions(), sleep=record
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=simulator.app()),
        base_url="http://127.0.0.1:1",
    ) as client:
        response = await client.get("/api/v1/groups/00g1/users")

    assert response.status_code == 401
    assert waits == []
