"""No Docker engine runs here, so the deployment files are checked by parsing them."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def load_compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_the_hub_against_postgres_with_healthchecks() -> None:
    compose = load_compose()
    services = compose["services"]
    assert set(services) == {"hub", "db"}
    hub, db = services["hub"], services["db"]
    assert hub["build"] == "."
    assert hub["depends_on"]["db"]["condition"] == "service_healthy"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert "/api/v1/health" in " ".join(hub["healthcheck"]["test"])
    env = hub["environment"]
    assert env["HUB_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert env["HUB_ENVIRONMENT"] == "production"


def test_keys_are_secrets_not_environment_values_or_image_layers() -> None:
    compose = load_compose()
    hub = compose["services"]["hub"]
    assert "hub_key" in hub["secrets"]
    assert hub["environment"]["HUB_KEY_FILE"] == "/run/secrets/hub_key"
    assert all(
        "KEY=" not in str(v) and "PASSWORD=" not in str(v) for v in hub["environment"].values()
    )
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "hub.key" not in dockerfile and "COPY var" not in dockerfile


def test_dockerfile_serves_the_api_as_an_unprivileged_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "USER ovphub" in dockerfile
    assert '"ovphub", "serve"' in dockerfile
    assert "requirements.lock" in dockerfile
