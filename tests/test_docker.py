"""docker/ and docker-compose.yml, checked without a Docker engine (none runs here): the
compose file parses, references Dockerfiles that exist, sets only real settings, and the
images run the same commands the tests run."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from api.cli import main as cli_main
from api.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_stack():
    services = COMPOSE["services"]
    assert set(services) == {"postgres", "api", "ray-head", "gpu-node", "worker"}
    postgres = services["postgres"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(v.startswith("pgdata:") for v in postgres["volumes"])
    devices = services["gpu-node"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    for name in ("api", "worker"):  # the shared data/results volume
        assert "data:/data" in services[name]["volumes"]
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_builds_existing_dockerfiles():
    for service in COMPOSE["services"].values():
        if "build" in service:
            assert (ROOT / service["build"]["context"] / service["build"]["dockerfile"]).is_file()


def test_compose_environment_is_valid_settings():
    fields = set(Settings.model_fields)
    for name, service in COMPOSE["services"].items():
        env = {k: v for k, v in (service.get("environment") or {}).items()
               if k.startswith("TASKAFFINITY_")}
        for key in env:
            assert key.removeprefix("TASKAFFINITY_").lower() in fields, (name, key)
        values = {k.removeprefix("TASKAFFINITY_").lower(): v for k, v in env.items()
                  if "${" not in str(v)}
        Settings(**values)  # every value parses
    worker = COMPOSE["services"]["worker"]["environment"]
    assert worker["TASKAFFINITY_EXECUTOR"] == "ray"
    assert worker["TASKAFFINITY_RAY_ADDRESS"] == "ray-head:6379"


def _dockerfile(name: str) -> str:
    return (ROOT / "docker" / name).read_text()


def test_images_are_layered_and_run_as_non_root():
    for name in ("Dockerfile.api", "Dockerfile.worker"):
        text = _dockerfile(name)
        assert text.index("COPY pyproject.toml") < text.index("COPY affinity"), name
        assert re.search(r"^USER app$", text, re.M), name


def test_entrypoints_are_the_commands_the_tests_run(capsys):
    api = re.search(r'ENTRYPOINT \[(.*)\]', _dockerfile("Dockerfile.api")).group(1)
    worker = re.search(r'ENTRYPOINT \[(.*)\]', _dockerfile("Dockerfile.worker")).group(1)
    assert api.startswith('"affinity", "serve"') and worker == '"affinity", "worker"'
    for command in (["serve", "--host", "0.0.0.0", "--port", "8000"], ["worker"]):
        try:  # the same parser accepts the images' arguments
            cli_main([*command, "--help"])
        except SystemExit as exc:
            assert exc.code == 0
    assert "--host" in capsys.readouterr().out
    ray_nodes = [COMPOSE["services"][n]["entrypoint"] for n in ("ray-head", "gpu-node")]
    assert all(e[:2] == ["ray", "start"] and "--block" in e for e in ray_nodes)
