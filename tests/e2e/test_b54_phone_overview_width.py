"""The overview on a phone (390 x 844, tester h54 P2): the page was 407 px wide and scrolled sideways; the Annotators
table's last header and the import job's "folders read as classes" and problems tables were cut at the right edge.
Now the page fits the screen, each wide table scrolls inside its card, and long file names wrap."""

from __future__ import annotations

import pytest

from labeling.models import LabelClass, Role
from labeling.services.annotations import annotation_create
from tests.factories import page_client, page_import, png_bytes

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

WIDTH = 390
# Every element whose right edge passes the screen's, outside a box that scrolls or clips it: what widens the page.
WIDER_THAN_SCREEN = """width => [...document.querySelectorAll('body *')].filter(el => {
  if (el.getBoundingClientRect().right <= width + 0.5) return false;
  for (let p = el.parentElement; p; p = p.parentElement) {
    if (getComputedStyle(p).overflowX !== 'visible') return false;
  }
  return true;
}).map(el => el.tagName + '.' + el.className + ' ' + Math.round(el.getBoundingClientRect().right))"""


@pytest.fixture
def phone_overview(project_factory, item_factory, member_of, django_capture_on_commit_callbacks):
    """A project as the demo leaves it: two annotators' labels this week and a finished import with folders read as
    classes (shapes2/<shape>/<colour>) and refused files of four kinds, under long names."""
    project = project_factory(name="Shapes H54")
    manager = member_of(project, Role.MANAGER, "manager")
    files = {
        f"shapes2/{shape}/{colour}/{shape}_{colour}_{n:03d}.png": png_bytes(70_000 + 100 * i + n)
        for i, (shape, colour) in enumerate(
            (s, c) for s in ("circle", "square", "triangle", "star") for c in ("red", "green", "blue")
        )
        for n in range(2)
    }
    files["shapes2/circle/red/dup1_circle_red_010.png"] = png_bytes(70_000)
    files["shapes2/square/green/empty_file_square_green.png"] = b""
    files["shapes2/star/blue/notes_about_this_folder.png"] = b"a text file, not an image\n"
    files["shapes2/triangle/red/truncated_triangle_red_021.png"] = png_bytes(79_999)[:60]
    page_import(page_client(manager), project, files, django_capture_on_commit_callbacks, labels_from_folders=True,
                dropped_folder="shapes2")  # fmt: skip
    first = LabelClass.objects.filter(project=project).order_by("pk").first()
    items = [item_factory(project=project) for _ in range(8)]
    for username, share in (("annotator", items[:5]), ("second_annotator", items[5:8])):
        user = member_of(project, Role.ANNOTATOR, username)
        for item in share:
            annotation_create(item=item, user=user, class_ids=[first.pk])
    return project


def test_the_overview_fits_a_phone_and_its_tables_scroll_inside_their_cards(page, login, phone_overview):
    # Given the manager on the overview on a 390 px wide phone
    page.set_viewport_size({"width": WIDTH, "height": 844})
    login("manager")
    page.goto(f"/p/{phone_overview.slug}/")
    page.locator("table.folder-classes").wait_for()

    # Then the page does not scroll sideways: nothing passes the screen's right edge
    assert page.evaluate(WIDER_THAN_SCREEN, WIDTH) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH

    # And each table ends inside its card, its last column reachable by scrolling the table itself
    for table in ("#annotators table", "table.folder-classes", "table.rejections-by-reason", "table.rejections"):
        box = page.locator(table).first
        ends = box.evaluate(
            "el => [el.getBoundingClientRect().right, el.closest('.card').getBoundingClientRect().right - 1]"
        )
        assert ends[0] <= ends[1] + 0.5, (table, ends)
        last = box.locator("tr").first.locator("th").last
        last.scroll_into_view_if_needed()
        edge = last.evaluate("el => el.getBoundingClientRect().right")
        assert edge <= WIDTH, (table, edge)

    # And the annotators' figures are all there
    assert "avg. seconds per label" in page.locator("#annotators thead").inner_text().replace("\n", " ")
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
