"""Admin "Add backbone weights" in Chromium, under the site's Content-Security-Policy: the form says that saving checks
the file for a while; a double click on Save sends the form once (the buttons are disabled and a note says the file
is being checked), and the weights are registered once, with no error about a taken name."""

from __future__ import annotations

import pytest
import timm
import torch
from django.contrib.auth import get_user_model
from safetensors.torch import save_file

from training.models import BackboneWeights

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

ARCH = "resnet10t"
ADD = "/admin/training/backboneweights/add/"
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(e.violatedDirective));
"""
# What the add page shows 0.2 s after its form is sent, kept across the navigation that follows.
SEEN_WHILE_SENDING = """
document.addEventListener("submit", () => setTimeout(() => sessionStorage.setItem("seen", JSON.stringify({
  note: document.getElementById("weights-checking")?.textContent ?? null,
  disabled: [...document.querySelectorAll(".submit-row input[type=submit]")].map((b) => b.disabled),
})), 200));
"""


def test_a_double_click_on_save_registers_the_weights_once(page, login, tmp_path):
    torch.manual_seed(1)
    path = tmp_path / "r18pt.safetensors"
    save_file(timm.create_model(ARCH, pretrained=False, num_classes=0).state_dict(), str(path))
    get_user_model().objects.create_superuser("root", password="pw")
    page.add_init_script(RECORD_VIOLATIONS + SEEN_WHILE_SENDING)
    login("root")
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and ADD in r.url else None)

    # given the add form, which says that saving takes a while
    page.goto(ADD)
    assert "this takes tens of seconds for a large file" in page.locator("fieldset .description").inner_text()
    page.fill("#id_name", "r18pt-admin")
    page.fill("#id_architecture", ARCH)
    page.fill("#id_path", str(path))

    # when Save is double-clicked (the check takes seconds: a child process loads torch and the file)
    page.locator("input[name=_save]").dblclick()
    page.wait_for_url("**/admin/training/backboneweights/", timeout=120_000)

    # then while the form was sent the page said the file was being checked, with its save buttons disabled
    seen = page.evaluate("JSON.parse(sessionStorage.getItem('seen'))")
    assert seen["note"].startswith("Checking the file: it is hashed and test-loaded before anything is stored.")
    assert seen["disabled"] == [True, True, True]
    # and the form went once: the weights are registered, with no error about a taken name
    assert len(posts) == 1
    assert "was added successfully" in page.locator(".messagelist").inner_text()
    assert page.locator(".errornote, .errorlist").count() == 0
    assert list(BackboneWeights.objects.values_list("name", flat=True)) == ["r18pt-admin"]
    assert page.evaluate("window.__csp") == []
