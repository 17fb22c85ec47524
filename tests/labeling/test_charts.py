"""Charts at a real taxonomy's size: 130 classes in a four-level tree with long and non-Latin names.

The model quality page leads with the largest confusions and the lowest F1 and keeps the full figures behind a
<details>; every label drawn in an SVG fits the space it has (measured with the font Chromium uses here, not
with the code's own table), and a shortened label carries its full name as a tooltip.
"""

import functools
import math
import re
import xml.etree.ElementTree as ET
from html import unescape
from pathlib import Path

import numpy as np
import pytest
from django.urls import reverse
from sklearn.metrics import f1_score

from labeling.models import LabelClass, Role
from training.ml.evaluate import evaluate
from training.models import ModelVersion

pytestmark = pytest.mark.django_db

DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
N_CLASSES, PER_CLASS, PLANTED = 130, 30, 25
SVG = ""  # inline SVG in HTML carries no namespace


def _names() -> list[tuple[str, str, str, str]]:
    """(root, group, family, leaf) for 130 leaves: 5 roots x 2 groups x 1 family x 13 leaves."""
    out = []
    for r in range(5):
        for g in range(2):
            for _ in range(13):
                leaf = f"Leaf class number {len(out):03d} with a long descriptive name"
                if len(out) == 7:
                    leaf = "WWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWW"
                if len(out) == 11:
                    leaf = "Ünïcödé ćlass ñame 漢字かな 😀 Ωμέγα"
                out.append((f"Root category {r} of everyday things", f"Group {g} of things", "Family", leaf))
    return out


def _leaves(project) -> list[LabelClass]:
    leaves, parents = [], {}
    for path in _names():
        parent = None
        for depth, name in enumerate(path):
            key = path[: depth + 1]
            if key not in parents:
                parents[key] = LabelClass.objects.create(project=project, name=name, parent=parent, order=len(parents))
            parent = parents[key]
        leaves.append(parent)
    return leaves


@functools.cache
def _holdout() -> tuple[list[int], list[int], dict]:
    """30 holdout items per class; planted confusion k sends 26 - k items of class k to class (7k + 3) mod 130, so
    the 25 planted pairs have distinct counts 26 down to 2 and nothing else is confused. (Computed once: the
    metrics of 3,900 items x 130 classes take seconds.)"""
    names = [" / ".join(path) for path in _names()]
    y, pred = [], []
    for t in range(N_CLASSES):
        wrong = (26 - t, (7 * t + 3) % N_CLASSES) if t < PLANTED else (0, t)
        for i in range(PER_CLASS):
            y.append(t)
            pred.append(wrong[1] if i < wrong[0] else t)
    probs = np.full((len(y), N_CLASSES), 0.1 / (N_CLASSES - 1))
    probs[np.arange(len(y)), pred] = 0.9
    return y, pred, evaluate(probs, y, names)


@pytest.fixture
def big_world(project_factory, member_of):
    """A 130-class project whose active version was evaluated on the planted holdout above."""
    project = project_factory()
    leaves = _leaves(project)
    names = [c.path for c in leaves]
    y, pred, metrics = _holdout()
    version = ModelVersion.objects.create(
        project=project, number=1, artifact_path="a", architecture="tf_efficientnet_lite0",
        class_ids=[c.pk for c in leaves], metrics=metrics, label_count=len(y), active=True,
    )  # fmt: skip
    viewer = member_of(project, Role.ML_ENGINEER, "mle")
    return {"project": project, "version": version, "names": names, "y": y, "pred": pred, "viewer": viewer}


def _svgs(html: str) -> list[ET.Element]:
    return [ET.fromstring(s) for s in re.findall(r"<svg\b.*?</svg>", html, flags=re.S)]


def _label_texts(svg: ET.Element) -> list[ET.Element]:
    return [t for t in svg.iter(f"{SVG}text") if t.get("class") == "chart-label"]


def _shown(text: ET.Element) -> str:
    return "".join(text.itertext()) if text.find(f"{SVG}title") is None else (text.find(f"{SVG}title").tail or "")


def _font_width():
    image_font = pytest.importorskip("PIL.ImageFont")
    if not DEJAVU.exists():
        pytest.skip("DejaVu Sans is not installed")
    font = image_font.truetype(str(DEJAVU), 1000)
    return lambda text, size: font.getlength(text) * size / 1000


def _page_and_matrix(client, world) -> str:
    """The many-class quality page with its full matrix, as a browser shows it once the matrix is opened."""
    html = client.get(reverse("training:model_quality", args=[world["project"].slug])).content.decode()
    url = re.search(r'id="full-matrix" hx-get="([^"]+)"', html)[1].replace("&amp;", "&")
    return html + client.get(url, HTTP_HX_REQUEST="true").content.decode()


def test_a_130_class_page_lists_the_top_confusions_in_order(client, big_world):
    client.force_login(big_world["viewer"])

    html = client.get(reverse("training:model_quality", args=[big_world["project"].slug])).content.decode()

    table = re.search(r'<table class="figures confusions" id="top-confusions">.*?</table>', html, flags=re.S).group(0)
    rows = re.findall(r'<tr><td title="([^"]*)">.*?</td><td title="([^"]*)">.*?</td><td class="num">(\d+)</td>', table)
    names = big_world["names"]
    expected = [(names[k], names[(7 * k + 3) % N_CLASSES], str(26 - k)) for k in range(20)]
    assert [(unescape(a), unescape(b), n) for a, b, n in rows] == expected
    # The rest (and the full matrix) are one click away, fetched when opened: the page itself carries neither.
    assert f"All {PLANTED} confused pairs" in html
    assert f"Full confusion matrix ({N_CLASSES} \u00d7 {N_CLASSES})" in html
    assert html.count("<tr><td title=") == 20
    assert "<rect" not in html.split('id="full-matrix"', 1)[1].split("</details>", 1)[0]
    parts = {
        part: client.get(
            re.search(rf'id="{key}" hx-get="([^"]+)"', html)[1].replace("&amp;", "&"), HTTP_HX_REQUEST="true"
        ).content.decode()
        for part, key in (("confusions", "all-confusions"), ("matrix", "full-matrix"))
    }
    assert parts["confusions"].count("<tr><td title=") == PLANTED
    assert len(re.findall(r"<rect\b", parts["matrix"])) >= PLANTED


def test_the_quality_page_parts_answer_only_for_this_projects_versions(client, big_world, project_factory, member_of):
    url = reverse("training:model_quality_part", args=[big_world["project"].slug])
    client.force_login(big_world["viewer"])
    assert client.get(url, {"v": 1, "part": "matrix"}).status_code == 200
    assert client.get(url, {"v": 1, "part": "everything"}).status_code == 404
    assert client.get(url, {"v": 99, "part": "matrix"}).status_code == 404
    assert client.get(url, {"v": "1 OR 1=1", "part": "matrix"}).status_code == 404
    client.force_login(member_of(project_factory(), Role.ML_ENGINEER, "outsider"))
    assert client.get(url, {"v": 1, "part": "matrix"}).status_code == 404


def test_a_130_class_page_charts_the_lowest_f1_and_keeps_every_class_in_a_table(client, big_world):
    client.force_login(big_world["viewer"])

    html = client.get(reverse("training:model_quality", args=[big_world["project"].slug])).content.decode()

    f1 = f1_score(big_world["y"], big_world["pred"], average=None, labels=range(N_CLASSES))
    names = big_world["names"]
    worst = sorted(range(N_CLASSES), key=lambda i: (f1[i], names[i]))[:20]
    chart = _svgs(re.search(r'id="f1-chart".*?</svg>', html, flags=re.S).group(0))[0]
    labels = _label_texts(chart)
    full = [unescape(t.find(f"{SVG}title").text) if t.find(f"{SVG}title") is not None else _shown(t) for t in labels]
    assert full == [names[i] for i in worst]
    # Every class's figures are one click away, fetched when opened
    per_class = re.search(r'<details id="per-class-all" hx-get="([^"]+)".*?</details>', html, flags=re.S)
    assert "<tr><td>" not in per_class[0]
    table = client.get(per_class[1].replace("&amp;", "&"), HTTP_HX_REQUEST="true").content.decode()
    assert len(re.findall(r"<tr><td>", table)) == N_CLASSES


def test_every_label_in_the_charts_fits_its_box_and_keeps_its_name_as_a_tooltip(client, big_world):
    width_of = _font_width()
    client.force_login(big_world["viewer"])

    html = _page_and_matrix(client, big_world)

    svgs = _svgs(html)
    heatmap = next(s for s in svgs if "heatmap" in s.get("class", ""))
    bars = _svgs(re.search(r'id="f1-chart".*?</svg>', html, flags=re.S).group(0))[0]
    names = set(big_world["names"])
    checked = 0
    for svg in (heatmap, bars):
        svg_width = float(svg.get("width"))
        for text in _label_texts(svg):
            shown, size = _shown(text), float(text.get("font-size"))
            title = text.find(f"{SVG}title")
            full = title.text if title is not None else shown
            assert size >= 10, "legible"
            assert full in names
            if title is not None:  # shortened: the top levels of the path go first, then the end of the leaf
                leaf = full.rsplit(" / ", 1)[-1]
                assert (shown.startswith("… / ") and full.endswith(shown[1:])) or (
                    shown.endswith("…") and leaf.startswith(shown[:-1])
                ), shown
            w = width_of(shown, size)
            if text.get("transform"):  # a column label, rotated 60 degrees up from (x, y)
                x, y = (float(v) for v in re.match(r"translate\(([^,]+),([^)]+)\)", text.get("transform")).groups())
                assert y - w * math.sin(math.radians(60)) >= 0, f"{shown!r} runs off the top"
                assert x + w * math.cos(math.radians(60)) <= svg_width, f"{shown!r} runs off the right edge"
            else:  # a row label, right-aligned at x: it must start inside the drawing
                assert float(text.get("x")) - w >= 0, f"{shown!r} is clipped on the left"
            checked += 1
    assert checked == 2 * N_CLASSES + 20  # 130 row and 130 column labels, 20 bars
    # The wide and the non-Latin names were among those that had to be shortened, and still fit.
    tooltips = {t.find(f"{SVG}title").text for t in _label_texts(heatmap) if t.find(f"{SVG}title") is not None}
    assert any("WWWW" in t for t in tooltips)
    assert any("漢字" in t for t in tooltips)


def test_the_full_matrix_is_drawn_at_a_readable_size_not_squeezed_to_the_page(client, big_world):
    client.force_login(big_world["viewer"])

    html = _page_and_matrix(client, big_world)

    svg = re.search(r'<svg class="chart heatmap"[^>]*>', html).group(0)
    assert 'style="max-width:none"' in svg  # scrolls inside its box instead of shrinking the text to nothing
    assert re.search(r'<div style="overflow:auto[^"]*">\s*<svg class="chart heatmap"', html)
    # Only the non-zero cells are drawn: 130 diagonal + 25 planted confusions.
    assert len(re.findall(r'<rect x="[^"]+" y="[^"]+" width="14"', html)) == N_CLASSES + PLANTED


def test_a_few_classes_keep_the_plain_matrix_and_every_bar(client, project_factory, member_of):
    project = project_factory()
    classes = [LabelClass.objects.create(project=project, name=f"c{i}", order=i) for i in range(5)]
    y = [0, 1, 2, 3, 4, 0, 1]
    probs = np.eye(5)[[0, 1, 2, 3, 4, 1, 1]]
    ModelVersion.objects.create(
        project=project, number=1, artifact_path="a", architecture="x", class_ids=[c.pk for c in classes],
        metrics=evaluate(probs, y, [c.name for c in classes]), label_count=7, active=True,
    )  # fmt: skip
    client.force_login(member_of(project, Role.ML_ENGINEER))

    html = client.get(reverse("training:model_quality", args=[project.slug])).content.decode()

    assert "top-confusions" not in html
    assert "Confusion matrix (holdout)" in html
    assert len(_label_texts(_svgs(re.search(r'id="f1-chart".*?</svg>', html, flags=re.S).group(0))[0])) == 5


def test_comparing_two_130_class_versions_charts_the_largest_changes(client, big_world):
    project, v1 = big_world["project"], big_world["version"]
    y = big_world["y"]
    probs = np.full((len(y), N_CLASSES), 0.1 / (N_CLASSES - 1))
    probs[np.arange(len(y)), y] = 0.9  # v2 gets everything right: the planted classes gain most
    ModelVersion.objects.create(
        project=project, number=2, artifact_path="b", architecture="x", class_ids=v1.class_ids,
        metrics=evaluate(probs, y, big_world["names"]), label_count=len(y),
    )  # fmt: skip
    client.force_login(big_world["viewer"])

    html = client.get(reverse("training:model_compare", args=[project.slug]) + "?a=1&b=2").content.decode()

    f1_a = f1_score(y, big_world["pred"], average=None, labels=range(N_CLASSES))
    names = big_world["names"]
    largest = sorted(range(N_CLASSES), key=lambda i: (-(1.0 - f1_a[i]), names[i]))[:20]
    chart = _svgs(re.search(r'id="delta-chart".*?</svg>', html, flags=re.S).group(0))[0]
    labels = _label_texts(chart)
    full = [t.find(f"{SVG}title").text if t.find(f"{SVG}title") is not None else _shown(t) for t in labels]
    assert full == [names[i] for i in largest]
    assert f"All {N_CLASSES} classes" in html


# Every chart label's box as Chromium draws it, relative to its SVG, with the SVG's on-screen scale.
LABEL_BOXES_JS = """() => [...document.querySelectorAll('svg.chart')].flatMap((svg) => {
  const frame = svg.getBoundingClientRect();
  const scale = frame.width / svg.width.baseVal.value;
  return [...svg.querySelectorAll('text.chart-label')].map((t) => {
    const r = t.getBoundingClientRect();
    return {text: t.textContent, left: r.left - frame.left, right: frame.right - r.right, top: r.top - frame.top,
            bottom: frame.bottom - r.bottom, px: parseFloat(t.getAttribute('font-size')) * scale};
  });
})"""


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_130_class_quality_page_in_a_browser_draws_every_label_whole(big_world, page, login, screenshot):
    login("mle")
    page.goto(reverse("training:model_quality", args=[big_world["project"].slug]))
    page.locator("#full-matrix summary").click()
    page.wait_for_selector("#full-matrix svg.chart")

    boxes = page.evaluate(LABEL_BOXES_JS)

    screenshot("quality-130-classes")
    assert len(boxes) == 2 * N_CLASSES + 20
    outside = [b for b in boxes if min(b["left"], b["right"], b["top"], b["bottom"]) < -0.5]
    assert outside == [], f"{len(outside)} labels are clipped, e.g. {outside[:3]}"
    assert min(b["px"] for b in boxes) >= 10, "every label is drawn at 10 px or more"
    assert page.locator("#top-confusions tbody tr").count() == 20
    page.locator("#per-class-all summary").click()
    page.wait_for_function(f"() => document.querySelectorAll('#per-class tbody tr').length === {N_CLASSES}")


def test_the_learning_curve_axis_counts_whole_labels():
    # One version at 397 labels: the axis read 396, 396.5, 397, 397.5, 398 "labels used for training"
    from labeling.charts import line_chart

    chart = line_chart([("accuracy", [(397, 0.6)], "#000")], x_label="labels", y_label="score", x_integer=True)
    assert [t["text"] for t in chart["x_ticks"]] == ["396", "397", "398"]
    wide = line_chart([("accuracy", [(20, 0.5), (1000, 0.8)], "#000")], x_label="labels", y_label="s", x_integer=True)
    assert [t["text"] for t in wide["x_ticks"]] == ["200", "400", "600", "800", "1000"]
