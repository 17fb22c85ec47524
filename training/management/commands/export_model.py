"""manage.py export_model PROJECT [--version N] --out PATH: safetensors + config, FP32/FP16/INT8 ONNX (verified and
measured on the holdout), manifest and model card.

A version that already has a finished export with the same inputs (selectors/model_exports.py) is not built again:
that export's zip is written to --out (--force builds a new one).

--out follows labeling.management.out_path, the rule export_dataset has: a folder when it ends in "/" (made if missing)
or names an existing folder, the zip then inside under its download name; else the zip's own path. It is checked
before the export starts (minutes on a CPU), an existing file is replaced and the output says so, and a copy that
fails at the end is a CommandError that leaves the job failed, not claiming a success nobody received.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from labeling.management.out_path import export_job_copy, out_path_check, out_path_write
from labeling.models import JobKind, Project
from labeling.services.exports import export_job_file
from labeling.services.job_limits import INPUTS_KEY
from labeling.services.jobs import job_create
from training.selectors.model_exports import model_export_finished, model_export_inputs, model_export_inputs_key
from training.services.export_formats import (
    EXPORT_STEPS,
    INT8_FILES_NOTE,
    accuracy_text,
    macro_f1_text,
    measured_note,
    size_text,
)
from training.services.exports import model_export_run, model_version_pick


class Command(BaseCommand):
    help = (
        "Export a model version as a zip: model.safetensors, config.json, model.onnx (checked), model.fp16.onnx, "
        "model.int8.onnx and model.int8.vnni.onnx, model.torchscript.pt (each measured on the holdout), manifest.json, "
        "README.md card."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        # Our --version (a model version) replaces Django's --version (the Django release).
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser) -> None:
        parser.add_argument("project", help="project slug")
        parser.add_argument("--version", type=int, default=None, help="version number (default: the active one)")
        parser.add_argument(
            "--force",
            action="store_true",
            help="build a new export even if the version has a finished one with the same labels, images, classes "
            "and code (without it, that export's zip is written to --out)",
        )
        parser.add_argument(
            "--out",
            required=True,
            help='zip path, or a folder (ending in "/", created if missing, or an existing one) that gets the zip '
            "under its download name; checked before the export starts; an existing file is replaced (the output "
            "says so)",
        )

    def handle(self, *args, **opts) -> None:
        project = Project.objects.filter(slug=opts["project"]).first()
        if project is None:
            raise CommandError(f"No project with slug {opts['project']!r}.")
        try:
            version = model_version_pick(project=project, number=opts["version"])
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        out = out_path_check(opts["out"])
        if out.replaces is not None:
            self.stderr.write(f"--out {out.replaces} exists: it will be replaced when the export finishes.")
        inputs = model_export_inputs(version=version)
        finished = None if opts["force"] else model_export_finished(version=version, inputs=inputs)
        if finished is not None:
            target = self._copy_finished(finished, out)
            self.stdout.write(
                f"v{version.number} already has an export with the same labels, images, classes and code "
                f"(job #{finished.number}): nothing was built, its zip -> {target} (--force builds a new one)."
            )
            self._measured(finished.result)
            return
        # inputs_key as the pages' jobs have it, so that they and later commands find this export
        params = {**inputs, "version": version.number, INPUTS_KEY: model_export_inputs_key(inputs)}
        job = job_create(project=project, kind=JobKind.EXPORT_MODEL, params=params, total=EXPORT_STEPS)
        bar = tqdm(total=EXPORT_STEPS, desc=f"export v{version.number}", disable=opts["verbosity"] == 0)

        def progress(done: int, total: int, message: str = "") -> None:
            bar.total = total
            bar.update(done - bar.n)  # redrawn at most every 0.1 s (tqdm's mininterval), not per image

        try:
            model_export_run(job_id=job.pk, progress=progress)
        finally:
            bar.close()
        job.refresh_from_db()
        if job.status != "succeeded":
            raise CommandError(job.message)
        target = export_job_copy(job=job, out=out)
        result = job.result
        self.stdout.write(
            f"v{result['version']} ({result['architecture']}, {result['classes']} classes), "
            f"ONNX max abs diff {result['onnx_max_abs_diff']:.2e} -> {target}"
        )
        self._measured(result)

    @staticmethod
    def _copy_finished(job, out):
        """The finished export's zip to --out. A failed copy leaves that export as it is (others download it)."""
        try:
            handle, name = export_job_file(job=job)
            with handle:
                return out_path_write(out, handle, name)
        except OSError as exc:
            raise CommandError(f"Could not copy the zip of export job #{job.number}: {exc}") from exc

    def _measured(self, result: dict) -> None:
        measured = result.get("measured")
        if measured:
            self.stdout.write(f"Measured on {measured_note(measured)}")
            for row in measured["formats"]:
                self.stdout.write(
                    f"  {row['label']:<10} accuracy {accuracy_text(row, measured)}  "
                    f"macro-F1 {macro_f1_text(row)}  "
                    f"agreement {row['top1_agreement']:.3f}  "
                    f"max prob diff {row['max_prob_diff']:.2e}  {size_text(row['size_bytes'])}  "
                    f"{row['ms_per_image']:.2f} ms/img  {row['img_per_s']:.1f} img/s  "
                    f"{'within' if row['within_tolerance'] else 'OUTSIDE'} tolerance ({row['tolerance']})"
                )
            self.stdout.write(f"  INT8: {measured['int8_method']}")
            self.stdout.write(f"  {INT8_FILES_NOTE}")
