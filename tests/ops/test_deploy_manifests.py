"""The example deployments: compose.yaml and the Kubernetes manifests.

Every SCIM_RECONCILER_* variable they set, and every secret file they mount
as scim_reconciler_<setting>, must be a real setting with a valid value.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from scim_reconciler.settings import (
    ENV_PREFIX,
    LOCATION_ENVS,
    Settings,
    SettingsError,
    load_settings,
)

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "compose.yaml"
KUBERNETES = REPO / "deploy" / "kubernetes"
SECRET_PREFIX = ENV_PREFIX.lower()


def kubernetes_documents() -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        documents.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return documents


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in kubernetes_documents() if doc["kind"] == kind]


def the_container() -> dict[str, Any]:
    (deployment,) = of_kind("Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    container_spec: dict[str, Any] = container
    return container_spec


def unknown_names(names: list[str]) -> list[str]:
    return [
        name
        for name in names
        if name.removeprefix(ENV_PREFIX).lower() not in Settings.model_fields
        and name not in LOCATION_ENVS
    ]


def assert_valid_settings(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Load the settings from exactly these variables; fail with the errors."""
    for name in [name for name in os.environ if name.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)
    monkeypatch.setenv(f"{ENV_PREFIX}SECRETS_DIR", str(tmp_path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        load_settings()
    except SettingsError as exc:
        pytest.fail(f"invalid settings in the manifests: {exc}")


# Kubernetes


def kubernetes_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for config_map in of_kind("ConfigMap"):
        env.update(config_map["data"])
    for variable in the_container().get("env", []):
        env[variable["name"]] = variable["value"]
    return env


def test_kubernetes_variables_are_settings() -> None:
    names = [name for name in kubernetes_env() if name.startswith(ENV_PREFIX)]

    assert names != []
    assert unknown_names(names) == []


def test_kubernetes_values_are_valid(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert_valid_settings(kubernetes_env(), monkeypatch, tmp_path)


def test_kubernetes_secret_files_are_settings() -> None:
    (secret,) = of_kind("Secret")
    keys = list(secret["stringData"])
    container = the_container()
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}

    assert keys != []
    assert all(key.startswith(SECRET_PREFIX) for key in keys)
    assert unknown_names([key.upper() for key in keys]) == []
    assert mounts["secrets"] == "/run/secrets"


def test_kubernetes_probes_use_health_endpoints() -> None:
    container = the_container()
    (port,) = container["ports"]

    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] == port["name"]
    assert port["containerPort"] == int(kubernetes_env()["SCIM_RECONCILER_PORT"])


def test_kubernetes_grace_period_covers_shutdown() -> None:
    (deployment,) = of_kind("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    grace = int(kubernetes_env()["SCIM_RECONCILER_SHUTDOWN_GRACE_SECONDS"])
    pre_stop = the_container()["lifecycle"]["preStop"]["exec"]["command"]

    assert pod["terminationGracePeriodSeconds"] > grace + int(pre_stop[-1])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0


def test_kubernetes_service_targets_container_port() -> None:
    (service,) = of_kind("Service")
    (deployment,) = of_kind("Deployment")

    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_kustomization_lists_every_manifest() -> None:
    (kustomization,) = of_kind("Kustomization")
    files = {path.name for path in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}

    assert set(kustomization["resources"]) == files


# Docker Compose


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def compose_env(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        return dict(item.split("=", 1) for item in environment)
    return {name: str(value) for name, value in environment.items()}


def test_compose_variables_and_secret_files_are_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    services = compose()["services"]
    ours = [
        service
        for service in services.values()
        if service.get("image") == "scim-reconciler"
    ]

    assert len(ours) == 2  # migrate and the replicas
    for service in ours:
        env = compose_env(service)
        targets = [secret["target"] for secret in service["secrets"]]
        assert unknown_names([n for n in env if n.startswith(ENV_PREFIX)]) == []
        assert all(target.startswith(SECRET_PREFIX) for target in targets)
        assert unknown_names([target.upper() for target in targets]) == []
        assert_valid_settings(env, monkeypatch, tmp_path)


def test_compose_runs_postgres_and_two_replicas() -> None:
    services = compose()["services"]
    replicas = services["scim-reconciler"]
    grace = int(compose_env(replicas)["SCIM_RECONCILER_SHUTDOWN_GRACE_SECONDS"])

    assert services["postgres"]["image"].startswith("postgres:")
    assert replicas["deploy"]["replicas"] == 2
    assert int(replicas["stop_grace_period"].removesuffix("s")) > grace
    assert services["migrate"]["command"] == ["migrate"]
    assert compose_env(replicas)["SCIM_RECONCILER_MIGRATE_ON_START"] == "false"
