"""Reads of the training app: the loop (runs, versions, what is due) in runs.py, model quality in quality.py.

A selector never imports a service. `training.selectors` re-exports the loop reads that views, tasks and commands use.
"""

from training.selectors.runs import (
    LabelsNotLearned,
    LoopStatus,
    backbone_weights_of_project,
    labels_not_learned,
    loop_status,
    model_version_active,
    model_versions,
    project_for_command,
    projects_due_for_training,
    run_in_flight,
    runs_recent,
)

__all__ = [
    "LabelsNotLearned",
    "LoopStatus",
    "backbone_weights_of_project",
    "labels_not_learned",
    "loop_status",
    "model_version_active",
    "model_versions",
    "project_for_command",
    "projects_due_for_training",
    "run_in_flight",
    "runs_recent",
]
