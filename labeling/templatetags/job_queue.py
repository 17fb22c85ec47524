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
