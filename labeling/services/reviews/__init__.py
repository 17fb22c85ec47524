"""Review writes: feed the review queue, record verdicts, mark gold items.

Feeds (one open ReviewTask per (item, reason), enforced by the database):
- sample: each live annotation is audited with probability project.review_sample_rate, decided by a fixed hash
  of the annotation id (Knuth's multiplicative hash, computable in SQL), so the sample is stable across refreshes;
- disagreement: items in state `review` (a consensus tie) or whose live annotations disagree (overlap > 1);
- model: the active model version predicts another class than the resolved label with confidence >= 0.9
  (read through django.apps so that labeling never imports training);
- gold: a live annotation on a gold item whose classes differ from the item's gold classes;
- label_error: written by training.services.label_errors via `review_tasks_label_errors_set`.

A verdict (`review_submit`) appends a Review row and recomputes the item's resolved label: `accept` confirms the
annotation, `reject` makes it stop counting (the item goes back to the queue), `correct` makes the reviewer's
classes the item's label. Tasks that a verdict answers are closed; a closed task is not reopened for the same
annotation (sample, gold) or unless the item changed after the verdict (disagreement, model). Nobody judges their
own label (a reviewer's record of an imported label excepted: they did not give it).

Modules: `feeds` (the review queue's feeds), `verdicts` (review_submit and gold items), `undo` (review_undo: the
reviewer's last verdict withdrawn within the undo grace period).
"""

from labeling.services.reviews.feeds import (
    MODEL_CONTRADICTION_CONFIDENCE,
    active_model_version,
    gold_classes_of,
    live_annotations,
    review_task_open,
    review_tasks_for_annotation,
    review_tasks_for_items,
    review_tasks_label_errors_set,
    review_tasks_refresh,
    sample_hash,
)
from labeling.services.reviews.undo import ReviewUndoConflict, ReviewUndone, review_undo, review_undo_target
from labeling.services.reviews.verdicts import item_gold_clear, item_gold_set, review_submit, task_annotation

__all__ = [
    "MODEL_CONTRADICTION_CONFIDENCE",
    "ReviewUndoConflict",
    "ReviewUndone",
    "active_model_version",
    "gold_classes_of",
    "item_gold_clear",
    "item_gold_set",
    "live_annotations",
    "review_submit",
    "review_task_open",
    "review_tasks_for_annotation",
    "review_tasks_for_items",
    "review_tasks_label_errors_set",
    "review_tasks_refresh",
    "review_undo",
    "review_undo_target",
    "sample_hash",
    "task_annotation",
]
