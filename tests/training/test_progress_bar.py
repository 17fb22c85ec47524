"""The commands' progress bar (train, score, label_errors, drift_check) says which stage it is in."""

from training.management.commands._progress import StageBar


def test_the_bar_shows_its_stage_beside_the_percentage(capsys):
    bar = StageBar("run #3")
    bar(1, 4, "embedding")
    bar(2, 2, "training")
    bar.close()

    err = capsys.readouterr().err
    # Before, the stage was set as tqdm's postfix but the bar's format left the postfix out: no stage was ever shown
    assert "25%, embedding" in err
    assert "100%, training" in err
    assert err.rstrip().endswith("100%, training")
