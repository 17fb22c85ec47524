"""Helpers for the first-hour browser suite: the worker processes of Procfile.dev, generated data sets (digits,
transparent line art, a 150-class four-level taxonomy), the keyboard driver's in-page key recorder and its oracle.

Nothing here knows the product's internals beyond its pages and public services: the suite reads what the page
shows (data attributes) and what the database holds.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import shlex
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tests.conftest import ROOT, wait_for

PROCFILE = ROOT / "Procfile.dev"

# --------------------------------------------------------------------------------------------
# The worker processes, started the way `make demo` (honcho -f Procfile.dev start) starts them
# --------------------------------------------------------------------------------------------


@dataclass
class ProcfileProcess:
    name: str
    argv: list[str]
    kind: str  # "worker" | "beat"

    def option(self, *names: str) -> str | None:
        for i, arg in enumerate(self.argv):
            for name in names:
                if arg == name and i + 1 < len(self.argv):
                    return self.argv[i + 1]
                if name.startswith("--") and arg.startswith(name + "="):
                    return arg.split("=", 1)[1]
                if not name.startswith("--") and arg.startswith(name) and len(arg) > len(name):
                    return arg[len(name) :]
        return None

    @property
    def queues(self) -> set[str]:
        value = self.option("-Q", "--queues")
        return set(value.split(",")) if value else {"celery"}


def procfile_celery_processes(procfile: Path = PROCFILE) -> list[ProcfileProcess]:
    """Every Celery worker and beat line of the Procfile, with `celery` run by this interpreter.

    Queues (-Q), concurrency (-c) and every other option stay as written; only the executable changes
    (`.venv/bin/celery` -> `python -m celery`).
    """
    found = []
    for line in procfile.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        name, command = (part.strip() for part in line.split(":", 1))
        argv = shlex.split(os.path.expandvars(command))
        exe = next((i for i, arg in enumerate(argv) if Path(arg).name == "celery"), None)
        if exe is None:
            continue
        argv = [sys.executable, "-m", "celery", *argv[exe + 1 :]]
        kind = "beat" if "beat" in argv[3:] else "worker" if "worker" in argv[3:] else ""
        if kind:
            found.append(ProcfileProcess(name=name, argv=argv, kind=kind))
    return found


@dataclass
class RunningProcess:
    spec: ProcfileProcess
    proc: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        for sig in (15, 9):
            if self.proc.poll() is not None:
                return
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(15)


class DemoProcesses:
    """The Celery side of `make demo`: one process per worker/beat line of Procfile.dev."""

    def __init__(self, env: dict, workdir: Path):
        self.env = env
        self.workdir = workdir
        self.running: list[RunningProcess] = []

    def start(self, procfile: Path = PROCFILE) -> DemoProcesses:
        specs = procfile_celery_processes(procfile)
        assert any(s.kind == "worker" for s in specs), f"{procfile} starts no Celery worker"
        for spec in specs:
            argv = list(spec.argv)
            if spec.kind == "beat":
                # The schedule file goes to this test's folder, not to the checkout's var/.
                schedule = str(self.workdir / f"beat-{spec.name}-schedule")
                for i, arg in enumerate(argv):
                    if arg in ("-s", "--schedule") and i + 1 < len(argv):
                        argv[i + 1] = schedule
                    elif arg.startswith("--schedule="):
                        argv[i] = f"--schedule={schedule}"
                if "-s" not in argv and not any(a.startswith("--schedule") for a in argv):
                    argv += ["-s", schedule]
            elif spec.option("-n", "--hostname") is None:
                argv += ["-n", f"{spec.name}@%h"]  # two workers on one host need two names
            log = self.workdir / f"{spec.name}.log"
            proc = subprocess.Popen(
                argv, cwd=ROOT, env=self.env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
            )
            self.running.append(RunningProcess(spec=spec, proc=proc, log=log))
        for running in self.running:
            marker = "ready." if running.spec.kind == "worker" else "beat: Starting"
            wait_for(
                lambda r=running, m=marker: m in r.output() or r.proc.poll() is not None,
                120,
                what=f"{running.spec.name} to start",
            )
            if running.proc.poll() is not None:
                raise AssertionError(f"{running.spec.name} exited:\n{running.output()[-3000:]}")
        return self

    @property
    def queues(self) -> set[str]:
        return set().union(*(r.spec.queues for r in self.running if r.spec.kind == "worker"))

    def logs(self, tail: int = 1500) -> str:
        return "\n".join(f"--- {r.spec.name} ---\n{r.output()[-tail:]}" for r in self.running)

    def stop(self) -> None:
        """SIGTERM to every process group at once (warm shutdowns overlap), then SIGKILL what is left."""
        for running in self.running:
            if running.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(running.proc.pid, 15)
        for running in self.running:
            running.stop()


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------


def digits():
    """scikit-learn's 1,797 handwritten digits (8x8, 0..16) and their true classes."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.images, data.target


def digit_png(pixels: np.ndarray, size: int = 64) -> bytes:
    """A digit as the demo writes it: dark ink on white, upscaled to size x size, greyscale PNG."""
    grey = (255 - pixels * (255 / 16)).clip(0, 255).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(grey, "L").resize((size, size), Image.Resampling.BICUBIC).save(buffer, "PNG")
    return buffer.getvalue()


def line_art_png(seed: int, size: int = 96) -> bytes:
    """Black line art on a fully transparent background (RGBA): invisible on a near-black stage."""
    rng = random.Random(seed)
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    for _ in range(4):
        box = sorted(rng.sample(range(8, size - 8), 2)), sorted(rng.sample(range(8, size - 8), 2))
        draw.ellipse((box[0][0], box[1][0], box[0][1], box[1][1]), outline=(0, 0, 0, 255), width=3)
    draw.line((rng.randrange(size), 0, rng.randrange(size), size - 1), fill=(0, 0, 0, 255), width=3)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def unique_digit_pngs(limit: int | None = None, size: int = 64) -> list[tuple[bytes, int]]:
    """(PNG bytes, true digit) for the digits, without byte-identical duplicates (the import skips those)."""
    images, targets = digits()
    seen, out = set(), []
    for pixels, target in zip(images, targets, strict=True):
        data = digit_png(pixels, size)
        if data in seen:
            continue
        seen.add(data)
        out.append((data, int(target)))
        if limit is not None and len(out) >= limit:
            break
    return out


def first_hour_zip(path: Path, *, n_digits: int = 500, n_line_art: int = 24) -> dict[str, str]:
    """A zip as macOS Finder makes it from a folder `first-hour/` of class folders (ImageFolder layout),
    `__MACOSX/` resource forks and a `.DS_Store` included. Returns file name in the zip -> class."""
    truth = {}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("first-hour/.DS_Store", b"\x00\x00\x00\x01Bud1" + b"\x00" * 64)
        for n, (data, digit) in enumerate(unique_digit_pngs(n_digits)):
            name = f"first-hour/digit-{digit}/{n:04d}.png"
            zf.writestr(name, data)
            zf.writestr(f"__MACOSX/first-hour/digit-{digit}/._{n:04d}.png", b"\x00\x05\x16\x07" + b"\x00" * 78)
            truth[name] = f"digit-{digit}"
        for n in range(n_line_art):
            name = f"first-hour/line-art/sketch-{n:02d}.png"
            zf.writestr(name, line_art_png(n))
            truth[name] = "line-art"
    return truth


# --------------------------------------------------------------------------------------------
# A 150-class, 22-top-level, four-level taxonomy
# --------------------------------------------------------------------------------------------

# s, z, b and i are page keys too: a search that leaks into hotkeys must show up as skips, undos, toggles.
_CONSONANTS = "bdfgklmnprstvwz"
_VOWELS = "aeiou"


def _words(rng: random.Random, n: int) -> list[str]:
    """n distinct pronounceable six-letter words; equal length, so none is part of another class's path."""
    words: list[str] = []
    while len(words) < n:
        word = "".join(rng.choice(_CONSONANTS) + rng.choice(_VOWELS) for _ in range(3))
        if word not in words:
            words.append(word)
    return words


def taxonomy_paths(*, top: int = 22, total: int = 150, seed: int = 13) -> list[str]:
    """Every node of the tree as an 'a/b/c/d' path, parents before children (150 nodes, 22 at the top,
    four levels). Shape: the first top class has 12 children, the second 4; four of the first one's
    children have 8 children each, and ten of those have 8 each (22 + 16 + 32 + 80 = 150)."""
    names = iter(_words(random.Random(seed), total))
    level1 = [next(names) for _ in range(top)]
    level2 = [(level1[0], next(names)) for _ in range(12)] + [(level1[1], next(names)) for _ in range(4)]
    level3 = [(*level2[i], next(names)) for i in range(4) for _ in range(8)]
    level4 = [(*level3[i], next(names)) for i in range(10) for _ in range(8)]
    paths = [*level1, *("/".join(p) for p in level2), *("/".join(p) for p in level3), *("/".join(p) for p in level4)]
    assert len(paths) == total, len(paths)
    return paths


def leaves(paths: Iterable[str]) -> list[str]:
    paths = list(paths)
    parents = {p.rsplit("/", 1)[0] for p in paths if "/" in p}
    return [p for p in paths if p not in parents]


# --------------------------------------------------------------------------------------------
# The keyboard driver's record: which item each key was pressed on, read in the page itself
# --------------------------------------------------------------------------------------------

# Runs before the page's own scripts on every navigation. A capture listener on window sees each keydown
# before the page's handlers (on document) do, so `item` is the card on screen when the key was pressed.
KEY_RECORDER = """(() => {
  const cardItem = () => {
    const card = document.getElementById('item-card');
    return card ? (card.dataset.itemId || card.dataset.item || '') : null;
  };
  window.__firstHour = {keys: [], cards: []};
  // Whether the page refused the key (static/js/label.js counts refusals on #key-note): read before the page's
  // handlers (capture, on window) and after them (bubbling back to window).
  const refusals = () => (document.getElementById('key-note') || {dataset: {}}).dataset.refused || '0';
  let before = null;
  window.addEventListener('keydown', (e) => {
    const active = document.activeElement;
    before = refusals();
    window.__firstHour.keys.push({key: e.key, item: cardItem(), t: Date.now(),
                                  search: !!active && active.id === 'class-search', refused: false});
  }, true);
  window.addEventListener('keydown', () => {
    const keys = window.__firstHour.keys;
    keys[keys.length - 1].refused = refusals() !== before;
  });
  const seen = () => {
    const item = cardItem();
    const cards = window.__firstHour.cards;
    if (item !== null && (!cards.length || cards[cards.length - 1].item !== item)) cards.push({item, t: Date.now()});
  };
  new MutationObserver(seen).observe(document, {childList: true, subtree: true, attributes: true,
                                                attributeFilter: ['data-item', 'data-item-id']});
  document.addEventListener('DOMContentLoaded', seen);
})();"""

# What a person sees: which card is up, whether its image has been painted, whether the search box has the focus.
PAGE_STATE = """() => {
  const card = document.getElementById('item-card');
  const active = document.activeElement;
  const img = card && card.querySelector('img');
  return {item: card ? (card.dataset.itemId || card.dataset.item || '') : null,
          painted: !!img && img.complete && img.naturalWidth > 0,
          search: !!active && active.id === 'class-search',
          busy: !!document.querySelector('.htmx-request')};
}"""

CLASS_BUTTONS = """() => Array.from(document.querySelectorAll('#label-form .class-btn')).map((b) => ({
  id: b.dataset.id, key: b.dataset.key || '', parent: b.dataset.parent || '', path: b.dataset.path || '',
  children: b.dataset.children === '1'}))"""


@dataclass
class Action:
    """One label as the driver typed it on the card it saw: the keys that spell the class, in order."""

    target: str  # the item on screen when the driver looked
    class_id: int
    kind: str  # "drill" | "search"
    keys: list[str]
    record: list[dict] = field(default_factory=list)  # the page's record of each of `keys`

    @property
    def landed_on(self) -> set[str]:
        return {r["item"] for r in self.record}


def stray_reach(actions: list[Action], raced: set[str]) -> set[str]:
    """The images a stray key reached, and those that the keys typed for them reached in turn (in order)."""
    reached = set(raced)
    for action in actions:
        if action.target in reached:
            reached |= action.landed_on
    return reached


def oracle(actions: list[Action], labels: dict[str, list[int]], unsure: set[str] = frozenset()) -> list[str]:
    """Problems with the labels in the database, judged from what was on screen when each key was pressed.

    The intended label of an image is the class the driver typed while that image was on screen. Every such
    image must hold exactly that label, and no other image may hold any: keys typed ahead of a card (a `/`,
    a double-tapped key) label nothing by themselves. Images in `unsure` got a stray key as well (and so may the
    images that the keys typed for them reached): they must hold at most one label.
    """
    problems, expected, unsure = [], {}, stray_reach(actions, unsure)
    for action in actions:
        if action.target in unsure:
            continue
        if action.landed_on != {action.target}:
            problems.append(f"the keys typed for item {action.target} were pressed on {sorted(action.landed_on)}")
        else:
            expected.setdefault(action.target, action.class_id)
    for item in sorted(labels.keys() | expected.keys(), key=int):
        got, want = labels.get(item, []), expected.get(item)
        if item in unsure:
            if len(got) > 1:
                problems.append(f"item {item} holds {len(got)} labels {got}")
        elif want is None:
            problems.append(f"item {item} was labeled {got}, but no class was typed while it was on screen")
        elif got != [want]:
            problems.append(f"item {item} holds {got or 'no label'}; the keys pressed on it spelled [{want}]")
    return problems


def wait_until(predicate, timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
