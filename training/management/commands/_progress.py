"""A tqdm bar driven by Progress callbacks (done, total, stage), shared by the train and score commands."""

from __future__ import annotations

import sys

from tqdm import tqdm


class StageBar:
    """One bar from 0 to 100 %, the current stage after it ("run #3:  40%|####      | 40%, training")."""

    def __init__(self, desc: str, disable: bool = False):
        self.bar = tqdm(
            total=100,
            desc=desc,
            unit="%",
            file=sys.stderr,
            disable=disable,
            bar_format="{l_bar}{bar}| {n:.0f}%{postfix}",
        )
        self.stage = ""

    def __call__(self, done: int, total: int, message: str = "") -> None:
        stage, fraction = message or self.stage, done / total if total else 1.0
        target = 100 * min(max(float(fraction), 0.0), 1.0)
        self.bar.update(target - self.bar.n)  # redrawn at most every 0.1 s (tqdm's mininterval)
        if stage != self.stage:
            self.stage = stage
            self.bar.set_postfix_str(stage)  # redraws now, with the count above

    def close(self) -> None:
        self.bar.close()
