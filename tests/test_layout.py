"""Project-wide guarantees: no stdlib shadowing, web processes never import torch, and the layout: no import cycles
among config/, labeling/, training/ and serving/, no module past 400 lines (migrations aside), nothing loose at an
app root."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_no_top_level_module_shadows_the_standard_library():
    names = {p.stem for p in ROOT.glob("*.py")} | {
        p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()
    }
    assert names, "found no top-level modules at all"
    assert "config" in names
    assert not names & set(sys.stdlib_module_names), f"shadowing: {names & set(sys.stdlib_module_names)}"


def test_web_process_and_tasks_modules_never_import_torch():
    """Load the WSGI app, the URLconf and every tasks module in a fresh interpreter: torch stays out."""
    code = (
        "import os, sys, importlib\n"
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings.test'\n"
        "from config.wsgi import application\n"
        "from django.urls import get_resolver\n"
        "get_resolver().url_patterns\n"
        "from config.celery_app import app\napp.loader.import_default_modules()\n"  # as a worker: every tasks.py
        "from django.test import Client\n"
        "Client().get('/accounts/login/')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'timm', 'torchvision'})\n"
        "print('LEAK' if bad else 'CLEAN', bad[:5])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "CLEAN" in out.stdout, out.stdout


APPS = ("config", "labeling", "training", "serving", "imaging", "stats")
MAX_LINES = 400


def _modules(root: Path) -> dict[str, Path]:
    """Dotted name -> file of every module of config/, labeling/ and training/ (migrations aside)."""
    modules = {}
    for app in APPS:
        for path in (root / app).rglob("*.py"):
            if "migrations" in path.parts or "__pycache__" in path.parts:
                continue
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path
    return modules


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Our modules that `name` imports anywhere in its source: at the top, inside functions, under TYPE_CHECKING."""
    import ast

    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".") if is_package else name.split(".")[:-1]
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, base] if base else parts)
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            # a package importing its own children (re-exports) is not a cycle of meaning
            if target and target != name and not target.startswith(name + "."):
                found.add(target)
    return found


def import_cycles(root: Path) -> list[list[str]]:
    """Strongly connected groups of more than one module in the import graph (Tarjan's algorithm)."""
    modules = _modules(root)
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_config_labeling_and_training_import_each_other_without_cycles():
    # Given the sources of the three packages (imports inside functions count too)
    assert len(_modules(ROOT)) > 100, "found too few modules: is ROOT the project root?"

    # Then no group of modules imports itself round in a circle
    assert import_cycles(ROOT) == []


def test_no_module_of_config_labeling_or_training_passes_400_lines():
    too_long = {
        str(path.relative_to(ROOT)): lines
        for path in _modules(ROOT).values()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert too_long == {}


# Django's own files, the app's one tasks module and pure helpers; everything else lives in a package
# (services/, selectors/, views/, api/, ml/) so that a behaviour has one home.
APP_ROOT_MODULES = {
    "__init__.py",
    "admin.py",
    "apps.py",
    "models.py",
    "urls.py",
    "tasks.py",
    "forms.py",
    "permissions.py",
    "api.py",
    "views.py",
    "selectors.py",
    "services.py",
    "metrics.py",
    "charts.py",
    "storage_utils.py",
    "heartbeat.py",
    "dispatch.py",
    "constants.py",
    "signals.py",
    "wsgi_predict.py",
}  # fmt: skip  (the last: the prediction service's WSGI entry, as config/wsgi.py)


def test_nothing_is_loose_at_an_app_root():
    loose = sorted(
        str(path.relative_to(ROOT))
        for app in ("labeling", "training", "serving")
        for path in (ROOT / app).glob("*.py")
        if path.name not in APP_ROOT_MODULES
    )
    assert loose == []


def _top_level_imports(package: str) -> set[tuple[str, str]]:
    """(file name, imported module) for every absolute import in `package`."""
    import ast

    return {
        (path.name, alias)
        for path in (ROOT / package).rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        for alias in (
            [a.name for a in node.names] if isinstance(node, ast.Import)
            else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
        )
    }  # fmt: skip


def test_imaging_imports_only_pillow_numpy_and_the_standard_library():
    """imaging/ is read by web processes (thumbnails, serving) and by training/ml (which imports nothing else of
    ours): no Django, no torch, nothing of ours."""
    allowed = {"PIL", "numpy", "imaging", "__future__", *sys.stdlib_module_names}
    found = _top_level_imports("imaging")
    assert found, "imaging/ imports nothing at all: is ROOT right?"
    assert {(name, mod) for name, mod in found if mod.split(".")[0] not in allowed} == set()


def test_stats_imports_only_the_standard_library():
    """stats/ is read by labeling (which may not import training) and by training/ml (which imports nothing of ours
    but imaging/ and stats/): the standard library only."""
    allowed = {"stats", "__future__", *sys.stdlib_module_names}
    found = _top_level_imports("stats")
    assert found, "stats/ imports nothing at all: is ROOT right?"
    assert {(name, mod) for name, mod in found if mod.split(".")[0] not in allowed} == set()
