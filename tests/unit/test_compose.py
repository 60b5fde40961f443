"""docker-compose.yml (MinIO + a one-shot bucket + the CPU image) cannot run here: check what can be checked.

It must be valid compose YAML and agree with the code: every variable it gives the image is one the code reads,
and those variables, read by the real Settings, point at the MinIO service, its credentials and the bucket
that the one-shot job creates.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

import yaml

from conftest import ROOT

from rclone_jupyter.config import settings
from rclone_jupyter.config.settings import Timing

COMPOSE = ROOT / "docker-compose.yml"


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def names_the_code_reads() -> set[str]:
    pattern = re.compile(r'"((?:JUPYTERLAB|RCLONE_JUPYTER|AWS|AZURE|GOOGLE)_[A-Z0-9_]+)"')
    names: set[str] = set()
    for path in (ROOT / "rclone_jupyter").rglob("*.py"):
        names.update(pattern.findall(path.read_text()))
    return names


def test_compose_is_well_formed():
    data = compose()
    assert set(data) <= {"name", "services", "volumes", "networks"}
    services = data["services"]
    assert set(services) == {"minio", "create-bucket", "jupyterlab"}
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert source.startswith((".", "/")) or source in data["volumes"], volume
    assert services["create-bucket"]["depends_on"]["minio"]["condition"] == "service_healthy"
    assert services["jupyterlab"]["depends_on"]["create-bucket"]["condition"] == "service_completed_successfully"
    assert services["create-bucket"]["restart"] == "no"  # one shot


def test_the_image_is_the_cpu_one_on_port_8000_with_time_to_flush():
    jupyterlab = compose()["services"]["jupyterlab"]
    assert jupyterlab["build"] == {"context": ".", "dockerfile": "Dockerfile.cpu"}
    dockerfile = ROOT / "Dockerfile.cpu"
    if dockerfile.exists():  # written in parallel; checked once it is there
        assert re.search(r"^EXPOSE\s+8000\b", dockerfile.read_text(), re.M)
    assert any(str(p).endswith(":8000:8000") or str(p) == "8000:8000" for p in jupyterlab["ports"])
    grace = jupyterlab["stop_grace_period"]
    assert grace.endswith("s") and float(grace[:-1]) > Timing.flush_deadline


def test_the_image_variables_are_read_by_the_code_and_point_at_minio(tmp_path):
    data = compose()
    services = data["services"]
    env = {k: str(v) for k, v in services["jupyterlab"]["environment"].items()}
    unknown = set(env) - names_the_code_reads()
    assert not unknown, f"docker-compose.yml sets variables the code never reads: {unknown}"

    loaded = settings.load({**env, "RCLONE_JUPYTER_STATE_DIR": str(tmp_path / "state"),
                            "RCLONE_JUPYTER_DATA_DIR": str(tmp_path / "data")})
    (remote,) = loaded.remotes
    assert remote.name == "s3" and loaded.port == 8000
    endpoint = urlparse(remote.options["endpoint"])
    assert endpoint.hostname == "minio"  # the compose service name
    assert any(str(p).endswith(f":{endpoint.port}") for p in services["minio"]["ports"])
    minio_env = services["minio"]["environment"]
    assert remote.options["access_key_id"] == minio_env["MINIO_ROOT_USER"]
    assert remote.options["secret_access_key"] == minio_env["MINIO_ROOT_PASSWORD"]
    assert services["create-bucket"]["environment"] == minio_env

    command = " ".join(services["create-bucket"]["command"])
    assert f"http://minio:{endpoint.port}" in command
    assert f"mc mb --ignore-existing local/{remote.bucket}" in command  # the bucket the image syncs to
    # `$$` reaches the container's shell as `$`; a single `$` would be replaced by compose on the host.
    assert re.findall(r"(?<!\$)\$(?!\$)", command.replace("$$", "")) == []
    assert '"$$MINIO_ROOT_USER" "$$MINIO_ROOT_PASSWORD"' in command


def test_readme_documents_it():
    readme = (ROOT / "README.md").read_text()
    assert "## Local testing with MinIO (Docker)" in readme
    assert "docker compose up --build" in readme
    assert Path(COMPOSE).name in readme
