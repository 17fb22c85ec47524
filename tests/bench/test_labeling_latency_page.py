"""bench/labeling_latency.py --via: the labeling page's own requests per keypress, measured beside the API's."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_page_mode_saves_every_label_it_posts_once_and_reports_both_vias():
    done = subprocess.run(
        [sys.executable, "bench/labeling_latency.py", "--sizes", "200", "--clients", "1", "--steps", "10",
         "--via", "api,page", "--workers", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    runs = {run["via"]: run for run in json.loads(done.stdout)["runs"]}

    assert set(runs) == {"api", "page"}
    page = runs["page"]
    assert page["errors"] == 0, page["error_samples"]
    assert page["steps"] == 10  # every keypress's post answered with the next card
    assert page["unsaved"] == 0  # each of them is a label in the database
    assert page["duplicates"] == 0  # and no item has two
    assert page["submit_ms"]["p50"] > 0
    assert page["step_ms"]["p50"] >= page["submit_ms"]["p50"]
    assert page["requests_per_step"] >= 1  # the post, then the images the new card brings
    assert 0 <= page["prefetch_hit_rate"] <= 1  # cards whose image an earlier card had prefetched
    api = runs["api"]
    assert (api["steps"], api["errors"], api["unsaved"], api["duplicates"]) == (10, 0, 0, 0)
    assert api["next_ms"]["p50"] > 0
    assert page["next_ms"]["p50"] is None
    assert "prefetch_hit_rate" not in api
