"""`manage.py demo_setup`: demo users (the manager may create projects) and the "Handwritten digits" project
(idempotent, fast on re-run).

Images come from scikit-learn's bundled `load_digits()` (1,797 8x8 greys, no download), upscaled to
64x64 PNGs under var/demo/digits/ and imported through the validated import service. The true labels
go to var/demo/digits_truth.csv for the annotator simulator and benchmarks; they are NOT imported.
SEED_PER_CLASS images per class are imported with labels (var/demo/digits_seed.csv) so the queue has a start.
"""

from __future__ import annotations

import csv
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from labeling.models import LabelClass, Membership, Project, Role, TaskType
from labeling.permissions import PROJECT_CREATORS
from labeling.services.imports import import_job_create, import_run
from labeling.services.projects import label_class_create, project_create

DEMO_PASSWORD = "labelloop-demo"
# Labeled images per class at import: a small starter set, as a team brings one. Five is what the model pages'
# cross-validated estimate needs (training.services.label_errors: one per fold), so the first version (50 labels,
# 2.8 % of the digits) already shows it; with 2 per class the estimate would read about 0.43 for a model that
# scores 0.65 on the rest (bench/cv_estimate.py --per-class 2), and the page withholds it.
SEED_PER_CLASS = 5
USERS = [("manager", Role.MANAGER), ("annotator", Role.ANNOTATOR), ("reviewer", Role.REVIEWER),
         ("mlengineer", Role.ML_ENGINEER)]  # fmt: skip
SLUG = "digits"


def write_digits(folder: Path, limit: int | None) -> list[tuple[str, int]]:
    """Write the digits as 64x64 grey PNGs (dark ink on white); returns (file name, true class)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for n, (pixels, target) in enumerate(zip(digits.images, digits.target, strict=True)):
        if limit is not None and n >= limit:
            break
        name = f"{n:04d}.png"
        path = folder / name
        if not path.exists():
            grey = (255 - pixels * (255 / 16)).clip(0, 255).astype("uint8")
            Image.fromarray(grey, "L").resize((64, 64), Image.Resampling.BICUBIC).save(path, optimize=False)
        rows.append((name, int(target)))
    return rows


class Command(BaseCommand):
    help = "Create demo users and the Handwritten digits project (safe to run again)."

    def add_arguments(self, parser):
        parser.add_argument("--dir", default=str(Path(settings.BASE_DIR) / "var" / "demo"), help="where to write")
        parser.add_argument("--limit", type=int, default=None, help="import only the first N digits (tests)")

    def handle(self, *args, **options):
        users = self._users()
        # The demo manager may create projects of their own, as a real manager would be allowed to.
        Group.objects.get_or_create(name=PROJECT_CREATORS)[0].user_set.add(users["manager"])
        project = Project.objects.filter(slug=SLUG).first()
        if project is None:
            project = project_create(
                name="Handwritten digits",
                slug=SLUG,
                created_by=users["manager"],
                task_type=TaskType.SINGLE,
                instructions="Press the digit you see (0-9). S skips, Z undoes the last label.",
            )
        for username, role in USERS:
            Membership.objects.update_or_create(user=users[username], project=project, defaults={"role": role})
        with transaction.atomic():
            existing = set(LabelClass.objects.filter(project=project, parent=None).values_list("name", flat=True))
            for digit in range(10):
                if str(digit) not in existing:
                    label_class_create(project=project, name=str(digit), hotkey=str(digit))

        if project.items.exists():
            count = project.items.count()
            self.stdout.write(f"Project {project.name!r} already has {count} images; nothing to import.")
        else:
            self._import(project, Path(options["dir"]), options["limit"])
        self.stdout.write(self.style.SUCCESS("Demo ready. Log in at http://127.0.0.1:8000/ with:"))
        for username, role in USERS:
            self.stdout.write(f"  {username:<11} / {DEMO_PASSWORD}   ({Role(role).label})")

    def _users(self) -> dict:
        model = get_user_model()
        users = {}
        for username, _ in USERS:
            user, created = model.objects.get_or_create(username=username)
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save(update_fields=["password"])
            users[username] = user
        return users

    def _import(self, project: Project, root: Path, limit: int | None) -> None:
        folder = root / "digits"
        rows = write_digits(folder, limit)
        with open(root / "digits_truth.csv", "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["filename", "label"])
            writer.writerows(rows)
        seed, per_class = [], {}
        for name, target in rows:
            if per_class.get(target, 0) < SEED_PER_CLASS:
                per_class[target] = per_class.get(target, 0) + 1
                seed.append((name, target))
        seed_csv = root / "digits_seed.csv"
        with open(seed_csv, "w", newline="") as fh:
            csv.writer(fh).writerows(seed)
        job = import_job_create(
            project=project,
            created_by=project.created_by,
            sources=[{"type": "folder", "path": str(folder.resolve()), "name": "digits"}],
            csv_path=str(seed_csv.resolve()),
        )
        result = import_run(job_id=job.pk)
        self.stdout.write(
            f"Imported {result['imported']} digits ({result['labeled']} labeled to start; "
            f"true labels in {root / 'digits_truth.csv'})."
        )
