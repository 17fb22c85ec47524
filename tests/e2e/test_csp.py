"""In Chromium, under the policy the server sends: every main page loads, runs its scripts and htmx, and reports no
Content-Security-Policy violation; the handlers that used to be inline still work; an injected script is refused."""

from __future__ import annotations

import pytest

from labeling.models import Project
from tests.factories import page_urls

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} ${e.sample || ""}`.trim());
});
"""


@pytest.fixture
def csp_page(page):
    """The page, recording securitypolicyviolation events and CSP console errors."""
    console: list[str] = []
    page.add_init_script(RECORD_VIOLATIONS)
    page.on(
        "console", lambda m: console.append(m.text) if "Content Security Policy" in m.text else None
    )  # fmt: skip

    def violations() -> list[str]:
        return [*page.evaluate("window.__csp || []"), *console]

    page.violations = violations
    return page


def test_every_main_page_loads_without_a_policy_violation(csp_page, login, busy_project, screenshot):
    project, manager = busy_project
    page = csp_page
    login(manager.username)
    for name, url in page_urls(project).items():
        response = page.goto(url)
        assert response.status == 200, name
        assert "script-src 'self'" in response.headers["content-security-policy"], name
        page.wait_for_load_state("load")
        # htmx and the page's own script have run (htmx processes the body once the document is parsed).
        page.wait_for_function("() => window.htmx && document.body && htmx.config.includeIndicatorStyles === false")
        page.wait_for_timeout(300)
        assert page.violations() == [], name
    screenshot("csp-model-quality")


def test_the_select_menus_that_had_inline_handlers_still_submit_their_form(csp_page, login, busy_project):
    project, manager = busy_project
    page = csp_page
    login(manager.username)
    page.goto(f"/p/{project.slug}/grid/")
    with page.expect_navigation():
        page.select_option("select[name=n]", "36")
    assert "n=36" in page.url
    assert page.locator("select[name=n]").input_value() == "36"

    page.goto(f"/p/{project.slug}/model/quality/?v=2")
    with page.expect_navigation():
        page.select_option("select[name=v]", "1")
    assert "v=1" in page.url
    assert page.violations() == []


def test_a_script_injected_into_a_page_is_refused_and_reported(csp_page, login, busy_project):
    """The policy is really enforced (not report-only), and the recorder above really sees violations."""
    project, manager = busy_project
    page = csp_page
    login(manager.username)
    page.goto(f"/p/{project.slug}/")
    page.evaluate(
        """() => {
          const s = document.createElement("script"); s.textContent = "window.__pwned = 1"; document.body.append(s);
          const img = document.createElement("img"); img.setAttribute("onerror", "window.__pwned = 2");
          img.src = "/no-such-image.png"; document.body.append(img);
          const style = document.createElement("style"); style.textContent = "body { display: none }";
          document.head.append(style);
        }"""
    )
    page.wait_for_timeout(500)
    assert page.evaluate("window.__pwned") is None
    assert page.locator("body").is_visible()
    seen = " | ".join(page.violations())
    assert "script-src-elem" in seen
    assert "script-src-attr" in seen
    assert "style-src-elem" in seen
    assert Project.objects.filter(pk=project.pk).exists()


def test_labeling_and_reviewing_through_htmx_swaps_raise_no_violation(csp_page, login, busy_project, member_of):
    """Keystrokes that swap cards in (htmx) and the scripts that run on the new card stay inside the policy."""
    project, _ = busy_project
    page = csp_page
    login("ann")
    page.goto(f"/p/{project.slug}/label/")
    page.wait_for_function("() => document.getElementById('item-card').dataset.ready")
    first = page.locator("#item-card").get_attribute("data-item")
    page.keyboard.press("1")
    page.wait_for_function(f"() => document.getElementById('item-card').dataset.item !== '{first}'")
    assert page.violations() == []

    member_of(project, "reviewer", "rita")
    page.context.clear_cookies()
    login("rita")
    page.goto(f"/p/{project.slug}/review/")
    task = page.locator("#review-card").get_attribute("data-task")
    assert task
    page.keyboard.press("a")
    page.wait_for_function(f"() => document.getElementById('review-card').dataset.task !== '{task}'")
    assert page.violations() == []
