"""Writes of the training app: runs, the scheduler, rounds (train / cold start / score) and the snapshot they use.

`training.services` re-exports the public functions; the ML side is imported lazily inside them.
"""

from training.constants import project_cache_dir
from training.services.rounds import (
    default_strategy_figures,
    head_pseudo_threshold,
    model_score_pool,
    predictions_write,
    round_config,
)
from training.services.runs import (
    RunRefused,
    training_run_cancel,
    training_run_enqueue,
    training_run_execute,
    training_run_fail,
    training_run_send,
)
from training.services.scheduler import training_runs_reap, training_runs_resend, training_scheduler_tick
from training.services.snapshot import class_order, item_local_path, label_snapshot, pool_snapshot

__all__ = [
    "RunRefused",
    "class_order",
    "default_strategy_figures",
    "head_pseudo_threshold",
    "item_local_path",
    "label_snapshot",
    "model_score_pool",
    "pool_snapshot",
    "predictions_write",
    "project_cache_dir",
    "round_config",
    "training_run_cancel",
    "training_run_enqueue",
    "training_run_execute",
    "training_run_fail",
    "training_run_send",
    "training_runs_reap",
    "training_runs_resend",
    "training_scheduler_tick",
]
