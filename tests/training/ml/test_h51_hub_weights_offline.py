"""weights="hub" on a worker without internet: the run's error says the hub weights could not be downloaded and what
to choose instead, then the technical cause (not a bare Hugging Face traceback)."""

from __future__ import annotations

import pytest
import timm.models._hub
from huggingface_hub.errors import LocalEntryNotFoundError

from training.ml.models import create_backbone


def test_hub_weights_that_cannot_be_downloaded_say_what_to_choose_instead(monkeypatch):
    def offline(*args, **kwargs):  # what huggingface_hub raises when the hub cannot be reached and nothing is cached
        raise LocalEntryNotFoundError(
            "An error happened while trying to locate the file on the Hub and we cannot find the requested files in "
            "the local cache."
        )

    monkeypatch.setattr(timm.models._hub, "hf_hub_download", offline)

    with pytest.raises(RuntimeError) as failed:  # the run records the message after the error's type name
        create_backbone("tf_efficientnet_lite0", "hub")

    message = str(failed.value)
    assert message.startswith(
        "The model hub weights for tf_efficientnet_lite0 could not be downloaded: the worker cannot reach the Hugging "
        "Face hub (no internet from the worker). In the project settings, choose the bundled EfficientNet-Lite0 or "
        "Lite2 weights or registered weights for Backbone weights."
    )
    assert message.endswith("Cause: LocalEntryNotFoundError: An error happened while trying to locate the file on the "
                            "Hub and we cannot find the requested files in the local cache.")  # fmt: skip


def test_other_weights_never_reach_the_hub(monkeypatch):
    def offline(*args, **kwargs):
        raise AssertionError("the hub was asked")

    monkeypatch.setattr(timm.models._hub, "hf_hub_download", offline)

    assert create_backbone("tf_efficientnet_lite0", "none") is not None
