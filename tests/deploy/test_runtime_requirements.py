"""Every third-party package the shipped code imports is installed by requirements.txt (or by what it pulls in).

The Docker images install requirements.txt only; the test environment also has requirements-dev.txt, so a module
that imported a dev-only package (moto, hypothesis, playwright...) would pass every other test here and then fail
in production the first time that module loads."""

import ast
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
# what the Dockerfiles copy (test_image_contents)
SHIPPED = ("config", "labeling", "training", "serving", "imaging", "stats")


def runtime_distributions() -> set[str]:
    """requirements.txt and everything its pins depend on (with the extras they ask for), as installed here."""
    lines = (line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines())
    todo = [Requirement(line) for line in lines if line and not line.startswith("-")]
    found: set[str] = set()
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in found:
            continue
        found.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for spec in requires:
            dep = Requirement(spec)
            extras = req.extras or {""}
            if dep.marker is None or any(dep.marker.evaluate({"extra": extra}) for extra in extras):
                todo.append(dep)
    return found


def third_party_imports() -> dict[str, set[str]]:
    """Top-level module -> the shipped files that import it (anywhere: at the top or inside a function)."""
    imports: dict[str, set[str]] = {}
    for package in SHIPPED:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in SHIPPED:
                        imports.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return imports


def test_shipped_code_imports_only_what_requirements_txt_installs():
    installed = runtime_distributions()
    assert {"django", "torch", "pillow"} <= installed
    providers = metadata.packages_distributions()
    imports = third_party_imports()
    assert {"django", "numpy", "PIL"} <= imports.keys(), "found too few imports: is ROOT the project root?"
    missing = {
        module: sorted(files)[:3]
        for module, files in imports.items()
        if not {canonicalize_name(d) for d in providers.get(module, [])} & installed
    }
    assert missing == {}, "imported by shipped code but not installed by requirements.txt"
