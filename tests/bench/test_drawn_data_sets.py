"""bench/active_learning.py --data glyphs100: the many-class stress set is what its name says."""

import hashlib
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from bench.al_data import load


def test_glyphs100_is_100_long_tailed_classes_of_distinct_drawings_with_a_balanced_test_set(tmp_path):
    split = load("glyphs100", tmp_path, pool=10**9, test=10**9, long_tail=None)

    assert split.name == "glyphs100"
    assert len(split.classes) == 100
    sizes = [int((split.pool_labels == c).sum()) for c in range(100)]
    assert sizes[0] == 150
    assert sizes[-1] == 10
    assert sizes == sorted(sizes, reverse=True)
    assert [int((split.test_labels == c).sum()) for c in range(100)] == [30] * 100
    digests = {hashlib.sha1(Path(p).read_bytes()).hexdigest() for p in split.pool_paths + split.test_paths}
    assert len(digests) == len(split.pool_paths) + len(split.test_paths)  # no image twice, not even across splits
    with pytest.raises(SystemExit, match="long-tailed already"):
        load("glyphs100", tmp_path, pool=10**9, test=10**9, long_tail=(100, 10))
