"""The container image, checked without a Docker engine.

scripts/image-steps runs the Dockerfile's steps: the wheel, a clean virtual
environment, and ``serve`` as an unprivileged user with the image's
environment. The other tests read the Dockerfile itself.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from scim_reconciler.settings import LOCATION_ENVS, Settings

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
# Building a wheel and installing every dependency into a new environment.
SCRIPT_TIMEOUT_SECONDS = 900


def dockerfile_instructions() -> list[tuple[str, str]]:
    """Return the Dockerfile's instructions as (keyword, arguments) pairs."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, arguments = stripped.partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(
        i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"
    )
    return instructions[last_from:]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, arguments in final_stage():
        if keyword == "ENV":
            env.update(re.findall(r"(\w+)=(\S+)", arguments))
    return env


def test_image_runs_as_numeric_non_root_user() -> None:
    users = [arguments for keyword, arguments in final_stage() if keyword == "USER"]

    assert len(users) == 1
    uid = users[0].split(":")[0]
    assert uid.isdigit()
    assert int(uid) != 0


def test_image_env_names_real_settings() -> None:
    names = [name for name in image_env() if name.startswith("SCIM_RECONCILER_")]

    unknown = [
        name
        for name in names
        if name.removeprefix("SCIM_RECONCILER_").lower() not in Settings.model_fields
        and name not in LOCATION_ENVS
    ]
    assert names != []
    assert unknown == []


def test_image_defaults_suit_a_container() -> None:
    env = image_env()
    volumes = [arguments for keyword, arguments in final_stage() if keyword == "VOLUME"]

    assert env["SCIM_RECONCILER_HOST"] == "0.0.0.0"
    assert env["SCIM_RECONCILER_DATABASE_URL"].startswith("sqlite:////data/")
    assert env["SCIM_RECONCILER_LOG_FORMAT"] == "json"
    assert volumes == ["/data"]


def test_image_entry_point_serves_and_checks_health() -> None:
    stage = dict(final_stage())

    assert stage["ENTRYPOINT"] == '["scim-reconciler"]'
    assert stage["CMD"] == '["serve"]'
    assert "/healthz" in stage["HEALTHCHECK"]
    assert "python -c" in stage["HEALTHCHECK"]


def test_final_stage_has_no_build_tools() -> None:
    commands = " ".join(
        arguments for keyword, arguments in final_stage() if keyword == "RUN"
    )
    copies = [arguments for keyword, arguments in final_stage() if keyword == "COPY"]

    for tool in ("apt-get install", "pip wheel", "pip install", "gcc", "hatch"):
        assert tool not in commands
    assert copies == ["--from=build /opt/scim-reconciler /opt/scim-reconciler"]


@pytest.mark.slow
@pytest.mark.skipif(
    os.geteuid() != 0, reason="image-steps needs root to start serve as nobody"
)
def test_image_steps_serve_ready_as_unprivileged_user() -> None:
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "image-steps")],
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT_SECONDS,
        check=False,
    )
    report = dict(
        line.split("=", 1) for line in result.stdout.splitlines() if "=" in line
    )
    failure = result.stdout + result.stderr[-5000:]

    assert result.returncode == 0, failure
    assert report["config_valid"] == "true"
    assert report["secret_key_shown"] == "****"
    assert report["secret_key_source"].startswith("secret file ")
    assert report["healthy"] == "yes", failure
    assert report["readyz"] == "200", failure
    uids = [int(uid) for uid in report["uids"].split()]
    assert len(uids) == 4
    assert 0 not in uids
    assert int(report["database_owner"]) == uids[0]
    assert report["stopped"] == "yes"
    assert report["json_log"] == "1"
