"""`{% job_waiting_behind job as waiting %}`: a queued job's place on its queue, for every page that shows a job.

A tag rather than view context because labeling/_job_status.html is rendered by many views (import, export,
review, model pages) and by the 1-second poll; each gets the same line without computing it itself.
"""

from __future__ import annotations

from django import template

from labeling.selectors import jobs as job_selectors

register = template.Library()


@register.simple_tag
def job_waiting_behind(job) -> job_selectors.WaitingBehind | None:
    return job_selectors.job_waiting_behind(job=job)


@register.filter
def job_result_summary(result) -> list[tuple[str, object]]:
    """The plain figures of a finished job's result, in order ("imported: 300"). Nested parts (per-format
    measurements, file lists, counts by reason) have their own tables on the pages that show them."""
    if not isinstance(result, dict):
        return []
    return [(k, v) for k, v in result.items() if isinstance(v, str | int | float | bool) and k != "files"]
