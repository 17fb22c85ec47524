"""docker/compose.yml parses with Debian's docker-compose 1.29 and defines the production stack."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yml"


def compose_config() -> dict:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (.ci/run installs it)")
    cmd = [binary, "-f", str(COMPOSE)]
    quiet = subprocess.run([*cmd, "config", "-q"], capture_output=True, text=True, timeout=60, check=False)
    assert quiet.returncode == 0, quiet.stderr
    out = subprocess.run([*cmd, "config"], capture_output=True, text=True, timeout=60, check=True)
    return yaml.safe_load(out.stdout)


def test_compose_file_is_valid_and_has_every_service():
    services = compose_config()["services"]
    expected = {"postgres", "redis", "migrate", "web", "housekeeping", "worker", "gpu-worker", "cpu-trainer", "beat"}
    assert expected <= set(services)
    assert {"minio", "createbuckets", "nginx"} <= set(services)


def test_each_queue_has_its_own_worker_service_and_every_queue_of_the_settings_is_consumed():
    """The scheduler tick never waits behind an import, an import never behind a training run."""
    from django.conf import settings

    services = compose_config()["services"]
    queues_of = {name: (s.get("environment") or {}).get("CELERY_QUEUES") for name, s in services.items()}
    assert queues_of["housekeeping"] == "housekeeping"
    assert queues_of["worker"] == "default"
    assert queues_of["gpu-worker"] == queues_of["cpu-trainer"] == "gpu"
    assert "profiles" not in services["housekeeping"]
    assert services["housekeeping"]["command"] == ["worker"]
    consumed = {q for value in queues_of.values() if value for q in value.split(",")}
    assert {q.name for q in settings.CELERY_TASK_QUEUES} == consumed


def test_gpu_worker_reserves_nvidia_gpus_and_takes_the_gpu_queue_one_task_at_a_time():
    gpu = compose_config()["services"]["gpu-worker"]
    assert gpu["profiles"] == ["gpu"]
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert device["capabilities"] == ["gpu"]
    assert gpu["environment"]["CELERY_QUEUES"] == "gpu"
    assert str(gpu["environment"]["CELERY_CONCURRENCY"]) == "1"
    assert gpu["build"]["dockerfile"] == "docker/Dockerfile.gpu"


def test_training_without_gpu_and_object_storage_are_opt_in_profiles():
    services = compose_config()["services"]
    assert services["cpu-trainer"]["profiles"] == ["cpu"]
    assert services["cpu-trainer"]["environment"]["CELERY_QUEUES"] == "gpu"
    assert "deploy" not in services["cpu-trainer"]
    assert services["minio"]["profiles"] == services["createbuckets"]["profiles"] == ["s3"]
    for name in ("web", "housekeeping", "worker", "beat", "migrate", "postgres", "redis"):
        assert "profiles" not in services[name], name


def test_app_services_wait_for_healthy_database_and_redis_and_run_production_settings():
    services = compose_config()["services"]
    for name in ("postgres", "redis", "web"):
        assert services[name]["healthcheck"]["test"], name
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    for name in ("web", "housekeeping", "worker", "gpu-worker", "cpu-trainer", "beat", "migrate"):
        service = services[name]
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy", name
        assert service["depends_on"]["redis"]["condition"] == "service_healthy", name
        assert service["environment"]["DJANGO_SETTINGS_MODULE"] == "config.settings.production", name
        assert service["environment"]["DATABASE_URL"].startswith("postgres://"), name
    assert services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "/livez" in " ".join(services["web"]["healthcheck"]["test"])


def test_dockerfiles_copy_only_paths_that_exist_and_run_as_non_root():
    for name in ("Dockerfile", "Dockerfile.gpu"):
        text = (ROOT / "docker" / name).read_text()
        sources = [
            src for line in re.findall(r"^COPY (.+)$", text, re.M) for src in line.split()[:-1] if src != "--chown"
        ]
        assert sources, name
        for src in sources:
            assert (ROOT / src).exists(), f"{name}: COPY {src} does not exist"
        assert re.search(r"^USER labelloop$", text, re.M), name
        assert "entrypoint.sh" in text
    assert "collectstatic" in (ROOT / "docker" / "Dockerfile").read_text()


def test_entrypoint_is_an_executable_posix_shell_script():
    script = ROOT / "docker" / "entrypoint.sh"
    assert script.stat().st_mode & 0o111
    assert subprocess.run(["sh", "-n", str(script)], capture_output=True, check=False).returncode == 0
