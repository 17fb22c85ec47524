"""`{% job_waiting_behind job as waiting %}`: a queued job's place on its queue, for every page that shows a job;
`{% job_details_shown as details %}`: whether this user sees a job's message, results and rejected files;
`job|job_errors`: its rejected files as the jobs API lists them (those refused at upload from the start);
`{% job_card as card %}` and `job|job_result_summary:card`: a finished job's figures, less those its card says in words.

A tag rather than view context because labeling/_job_status.html is rendered by many views (import, export,
review, model pages) and by the 1-second poll; each gets the same line without computing it itself.
"""

from __future__ import annotations

from django import template

from labeling.models import JobKind
from labeling.permissions import Capability, role_can
from labeling.selectors import jobs as job_selectors

register = template.Library()


@register.simple_tag(takes_context=True)
def job_details_shown(context) -> bool:
    """A job's message, results and rejected files can name server folders, files and what labels a CSV gave: the
    roles that read metrics see them (as the jobs API's detail fields), an annotator sees kind, status and progress.
    Every view that shows a job is a project view, which sets request.role."""
    return role_can(getattr(context.get("request"), "role", None), Capability.VIEW_METRICS)


@register.simple_tag
def job_waiting_behind(job) -> job_selectors.WaitingBehind | None:
    return job_selectors.job_waiting_behind(job=job)


@register.filter
def job_errors(job) -> list[dict]:
    return job_selectors.job_errors(job=job)


# Words for the result keys the jobs write (imports, exports, scoring, inference, label-error searches) where the key
# with its underscores as spaces would not read well; any other key is shown that way.
RESULT_WORDS = {
    "item_count": "items",
    "dataset_hash": "dataset hash",
    "onnx_max_abs_diff": "ONNX logits, largest difference from PyTorch on a random batch",
    "torchscript_max_abs_diff": "TorchScript logits, largest difference from PyTorch on a random batch",
    "shard_seconds": "seconds in all shards",
    "status": "outcome",
    "estimated_share": "estimated share of errors",
    "not_checked": "classes not checked",
    "weak_classes": "classes too weak to judge",
    "relabeled": "import labels replaced",
}
# The summary's order: these first, then any other key alphabetically. A job's result is stored as JSON, and
# PostgreSQL's jsonb keeps no key order (it read "labeled: 3 · imported: 3 …" where SQLite kept the job's order).
RESULT_ORDER = (
    "status",
    "imported",
    "labeled",
    "relabeled",
    "duplicates",
    "rejected",
    "label_errors",
    "format",
    "item_count",
)
# Keys whose value is a code (a label-error search's "too_few"): shown with its underscores as spaces too.
CODE_VALUES = {"status"}


# Result keys a job's card already says in words, so its "key: value" line leaves them out, by card. A page names its
# card when it includes labeling/_job_status.html (`with job_card="model-exports"`); the block's 1-second status poll
# carries the name as ?card=, so the poll's render of the finished job is the same card as the page's. EVERY: the
# card says none of the job's figures as "key: value" (its page, or the line the card has instead, says them).
EVERY = "every key"
SAID_ON_THE_CARD = {
    # training/exports.html: the inference's message ("198 files predicted with v3, 2 rejected"), the download
    # button's size, the measured table's caption (its version)
    "model-exports": {
        JobKind.INFERENCE: frozenset({"predicted", "rejected", "version", "bytes"}),
        JobKind.EXPORT_MODEL: frozenset({"version", "bytes"}),
    },
    # labeling/review_label_errors.html: the page shows the finished search itself (it reloads its summary and list
    # when the job ends), so the card says only that it ended
    "label-errors": {JobKind.LABEL_ERRORS: EVERY},
    # labeling/project_detail.html's recent jobs: these kinds' cards say in one line where the figures are
    # (_job_status.html), a label-error search that judged nothing why, as its page headlines it (the search's
    # reason); the inference's message says what it predicted
    "overview": {
        JobKind.INFERENCE: frozenset({"predicted", "rejected", "version", "bytes"}),
        JobKind.EXPORT_MODEL: EVERY,
        JobKind.LABEL_ERRORS: EVERY,
    },
}


@register.simple_tag(takes_context=True)
def job_card(context) -> str:
    """The card a job block is shown on: the including page's `job_card`, or on the status poll the ?card= its URL
    carries; "" for the plain card (every other page) and for a name no page uses."""
    request = context.get("request")
    name = context.get("job_card") or (request.GET.get("card", "") if request is not None else "")
    return name if name in SAID_ON_THE_CARD else ""


@register.filter
def job_result_summary(job, card: str = "") -> list[tuple[str, object]]:
    """The plain figures of a finished job's result, in order and in words ("imported: 300", "label errors: 2",
    "outcome: too few"); whole numbers as they are, others to 3 significant digits (_number_text). Nested parts
    (per-format measurements, file lists, counts by reason) have their own tables on the pages that show them, and
    the keys the job's card says in words (SAID_ON_THE_CARD) are left out. A pool scoring says its result in one
    line (_score_summary)."""
    result = job.result
    if not isinstance(result, dict):
        return []
    said = SAID_ON_THE_CARD.get(card, {}).get(job.kind, frozenset())
    if said == EVERY:
        return []
    if job.kind == JobKind.SCORE and isinstance(result.get("scored"), int):
        return _score_summary(result)
    rank = {key: n for n, key in enumerate(RESULT_ORDER)}
    ordered = sorted(result.items(), key=lambda kv: (rank.get(kv[0], len(rank)), str(kv[0])))
    return [
        (
            RESULT_WORDS.get(k, str(k).replace("_", " ")),
            v.replace("_", " ") if k in CODE_VALUES and isinstance(v, str) else _number_text(v),
        )
        for k, v in ordered
        if isinstance(v, str | int | float | bool) and k != "files" and k not in said
    ]


def _score_summary(result: dict) -> list[tuple[str, str]]:
    """A pool scoring's result as one sentence, "Scored 1,312 open images with v3 in 9.5 s.", not its raw keys (the
    card prints an entry with no key without one). Its keys (training.services.rounds.model_score_pool; sharded,
    training.services.sharding): scored, version, seconds, or shards and shard_seconds; priorities only where the
    queue was left as it was."""
    n, version = result["scored"], result.get("version")
    line = f"{n:,} open image{'' if n == 1 else 's'}" + (f" with v{version}" if version is not None else "")
    shards = result.get("shards")
    seconds = result.get("shard_seconds" if isinstance(shards, int) else "seconds")
    timed = isinstance(seconds, int | float) and not isinstance(seconds, bool)
    if n and isinstance(shards, int) and shards > 1:
        line += f" in {shards} shards" + (f", {seconds:,.1f} s of work in all" if timed else "")
    elif n and timed:
        line += f" in {seconds:,.1f} s"
    skipped = result.get("priorities")
    if isinstance(skipped, str) and skipped:
        line += f"; the queue order was not changed: {skipped.removeprefix('skipped: ')}"
    return [("", f"Scored {line}.")]


def _number_text(value):
    """A float to 3 significant digits ("0.875", "12.3", "1,235"), a tiny one in scientific notation ("3.17e-05"):
    not the 20 digits a float's repr gives. Anything else as it is."""
    if not isinstance(value, float) or isinstance(value, bool):
        return value
    if value == 0 or value != value:
        return f"{value:g}"
    if abs(value) < 1e-3:
        return f"{value:.2e}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"
