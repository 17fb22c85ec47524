"""docs/configuration.md documents every environment variable the settings, entry point and compose file read."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHELL_ONLY = {"PATH", "HOME"}


def variables_read() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in sorted((ROOT / "config").rglob("*.py")):
        text = path.read_text()
        for name in re.findall(r"\benv(?:\.\w+)?\(\s*\"([A-Z][A-Z0-9_]+)\"", text):
            found.setdefault(name, str(path.relative_to(ROOT)))
        for name in re.findall(r"os\.environ(?:\.get)?[(\[]\s*\"([A-Z][A-Z0-9_]+)\"", text):
            found.setdefault(name, str(path.relative_to(ROOT)))
    for rel in ("docker/entrypoint.sh", "docker/compose.yml"):
        for name in re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (ROOT / rel).read_text()):
            found.setdefault(name, rel)
    return {k: v for k, v in found.items() if k not in SHELL_ONLY}


def test_every_environment_variable_is_documented():
    read = variables_read()
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "LOG_FORMAT", "CELERY_QUEUES"} <= set(read)
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", (ROOT / "docs" / "configuration.md").read_text()))
    missing = sorted(f"{name} (read in {where})" for name, where in read.items() if name not in documented)
    assert not missing, "add these to docs/configuration.md: " + ", ".join(missing)


def test_env_example_only_sets_documented_variables():
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", (ROOT / "docs" / "configuration.md").read_text()))
    example = re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / "docker" / "env.example").read_text(), re.M)
    assert example
    assert not sorted(set(example) - documented)
