"""What the Dockerfiles COPY is enough to run: the image's tree, rebuilt here from the COPY lines alone, runs the
build's own collectstatic step and imports every module of every app it ships (no Docker engine runs here)."""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Every module of the copied packages, imported the way a worker or a command would: with Django set up.
IMPORT_ALL = """
import importlib, os, pathlib, sys
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")  # as manage.py and the wsgi entry
django.setup()
failed = []
for package in sys.argv[1:]:
    for path in sorted(pathlib.Path(package).rglob("*.py")):
        name = ".".join(path.with_suffix("").parts).removesuffix(".__init__")
        try:
            importlib.import_module(name)
        except Exception as exc:
            failed.append(f"{name}: {type(exc).__name__}: {exc}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def image_tree(dockerfile: Path, dest: Path) -> list[str]:
    """Copy what `dockerfile`'s COPY lines copy (build context: the repository) into `dest`, the image's WORKDIR.
    Returns the Python packages it copied."""
    packages = []
    for line in re.findall(r"^COPY (.+)$", dockerfile.read_text(), re.M):
        *sources, target = [part for part in shlex.split(line) if not part.startswith("--")]
        for src in sources:
            source = ROOT / src
            into = dest / target / source.name if target.endswith("/") else dest / target
            if source.is_dir():
                shutil.copytree(source, into, ignore=shutil.ignore_patterns("__pycache__"))
                if (source / "__init__.py").exists():
                    packages.append(into.name)
            else:
                into.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, into)
    return packages


def build_env(dockerfile: Path) -> dict[str, str]:
    """The throwaway settings the Dockerfile's collectstatic step runs with."""
    step = re.search(r"((?:[A-Z_]+=\S+\s+(?:\\\s*)?)+)python manage.py collectstatic", dockerfile.read_text())
    assert step, f"{dockerfile.name}: no collectstatic step"
    pairs = dict(re.findall(r"([A-Z_]+)=(\S+)", step.group(1)))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "LABELLOOP_"))}
    return {**env, **pairs, "PYTHONPATH": "", "PYTHONDONTWRITEBYTECODE": "1"}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.gpu"])
def test_the_image_holds_every_app_and_package_its_code_imports(name, tmp_path):
    dockerfile = ROOT / "docker" / name
    app = tmp_path / "app"
    app.mkdir()
    packages = image_tree(dockerfile, app)
    env = build_env(ROOT / "docker" / "Dockerfile")  # the GPU image has no static step; its tree must pass it too
    static = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=app, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert static.returncode == 0, f"{name}: the build's collectstatic step fails:\n{static.stderr[-2000:]}"
    imported = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL, *sorted(packages)],
        cwd=app, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    why = imported.stdout[-3000:] + imported.stderr[-2000:]
    assert imported.returncode == 0, f"{name}: modules that do not import in the image:\n{why}"
