"""Settings page (labels, strategy and backbone choices), the merged project overview, and the API docs page."""

import re
from html import unescape

import pytest
from django.test import Client
from django.urls import reverse

from labeling.constants import BUNDLED_BACKBONE, BUNDLED_BACKBONES, STRATEGIES
from labeling.forms import ProjectSettingsForm
from labeling.models import Annotation, Role
from labeling.services.annotations import annotation_create, annotation_skip, annotation_undo
from tests.factories import page_client

pytestmark = pytest.mark.django_db


def settings_post(client: Client, project, **changes):
    data = {k: v for k, v in ProjectSettingsForm(instance=project).initial.items() if v is not None}
    for key in ("flip_average", "preselect_suggestion"):  # an unticked checkbox is absent from the POST
        if not data.get(key):
            data.pop(key, None)
    data.update(changes)
    return client.post(reverse("labeling:project_settings", args=[project.slug]), {**data, "action": "settings"})


def test_settings_labels_are_words_a_manager_reads(project, member_of):
    manager = page_client(member_of(project, Role.MANAGER))

    html = manager.get(reverse("labeling:project_settings", args=[project.slug])).content.decode()

    assert "Active-learning strategy" in html
    assert "Al strategy" not in html
    labels = {
        unescape(re.sub(r"<[^>]+>", "", m)).strip() for m in re.findall(r"<label[^>]*>(.*?)</label>", html, flags=re.S)
    }
    # Labels Django derives from field names read like variable names.
    assert not labels & {"Al strategy:", "Min labels to train:", "Preselect suggestion:", "Annotations per item:"}
    assert {"Labels before the first model:", "Preselect the model's suggestion:"} <= labels
    for field in ("al_strategy", "backbone", "backbone_weights", "training_mode", "holdout_fraction"):
        assert ProjectSettingsForm(instance=project).fields[field].help_text


def test_strategy_and_backbone_are_choices_of_what_the_worker_runs(project, member_of):
    manager = page_client(member_of(project, Role.MANAGER))

    html = manager.get(reverse("labeling:project_settings", args=[project.slug])).content.decode()

    strategy_select = re.search(r'<select name="al_strategy".*?</select>', html, flags=re.S).group(0)
    assert re.findall(r'<option value="([^"]+)"', strategy_select) == list(STRATEGIES)
    assert 'value="diverse_margin" selected' in strategy_select
    backbone_select = re.search(r'<select name="backbone".*?</select>', html, flags=re.S).group(0)
    assert re.findall(r'<option value="([^"]+)"', backbone_select) == list(BUNDLED_BACKBONES)


def test_an_unknown_strategy_or_backbone_is_refused(project, member_of):
    manager = page_client(member_of(project, Role.MANAGER))

    bad_strategy = settings_post(manager, project, al_strategy="margn")
    bad_backbone = settings_post(manager, project, backbone="resnet9000")

    assert bad_strategy.status_code == 200
    assert "Select a valid choice. margn is not one of the available choices." in bad_strategy.content.decode()
    assert bad_backbone.status_code == 200
    assert "resnet9000 is not one of the available choices" in bad_backbone.content.decode()
    project.refresh_from_db()
    assert (project.al_strategy, project.backbone) == ("diverse_margin", BUNDLED_BACKBONE)


def test_a_manager_picks_a_strategy_and_it_is_saved(project, member_of):
    manager = page_client(member_of(project, Role.MANAGER))

    response = settings_post(manager, project, al_strategy="entropy")

    assert response.status_code == 302
    project.refresh_from_db()
    assert project.al_strategy == "entropy"


def test_an_old_project_keeps_its_backbone_but_bundled_weights_need_a_bundled_backbone(project_factory, member_of):
    project = project_factory(backbone="resnet18", backbone_weights="/models/resnet18.safetensors")
    manager = page_client(member_of(project, Role.MANAGER))

    kept = settings_post(manager, project, retrain_every=50)
    bundled = settings_post(manager, project, backbone_weights="bundled")

    assert kept.status_code == 302
    project.refresh_from_db()
    assert (project.backbone, project.retrain_every) == ("resnet18", 50)
    assert bundled.status_code == 200
    assert "Bundled weights exist only for tf_efficientnet_lite0 and tf_efficientnet_lite2" in bundled.content.decode()


def test_a_manager_switches_to_the_bundled_lite2_and_sees_what_each_backbone_costs(project, member_of):
    manager = page_client(member_of(project, Role.MANAGER))

    page = manager.get(reverse("labeling:project_settings", args=[project.slug])).content.decode()
    response = settings_post(manager, project, backbone="tf_efficientnet_lite2", backbone_weights="bundled")

    # The measured trade-off sits beside the choice: every bundled backbone, with its cost and its accuracy
    table = re.search(r'<table class="backbone-figures">.*?</table>', page, flags=re.S).group(0)
    rows = re.findall(r"<tr[^>]*><td><code>([^<]+)</code>", table)
    assert set(rows) == set(BUNDLED_BACKBONES)
    assert re.search(r"<td>\d+(\.\d+)? s</td>", table)  # seconds per 1,000 images
    assert "(default)" in table
    assert response.status_code == 302
    project.refresh_from_db()
    assert (project.backbone, project.backbone_weights) == ("tf_efficientnet_lite2", "bundled")


def test_rates_out_of_range_get_a_form_error_not_a_constraint_name(project, member_of):
    manager = page_client(member_of(project, Role.MANAGER))

    response = settings_post(manager, project, review_sample_rate=5)

    html = response.content.decode()
    assert response.status_code == 200
    assert "less than or equal to 1" in html
    assert "project_review_rate_range" not in html


def test_the_strategy_list_is_the_ml_registry():
    from training.ml.config import STRATEGIES as ML_STRATEGIES
    from training.ml.models import BUNDLED, BUNDLED_ARCH

    assert set(STRATEGIES) == set(ML_STRATEGIES)
    assert BUNDLED_BACKBONE == BUNDLED_ARCH
    assert set(BUNDLED_BACKBONES) == set(BUNDLED)


def test_the_labeling_page_ticks_a_multi_label_suggestion_at_the_models_own_threshold():
    import inspect

    from labeling.constants import MULTI_LABEL_THRESHOLD
    from training.ml.evaluate import evaluate
    from training.ml.export_files import MULTI_LABEL_THRESHOLD as EXPORT_THRESHOLD

    assert MULTI_LABEL_THRESHOLD == EXPORT_THRESHOLD == inspect.signature(evaluate).parameters["threshold"].default


def test_the_api_schema_lists_the_strategies(project, member_of):
    client = page_client(member_of(project, Role.ML_ENGINEER))

    schema = client.get(reverse("api-schema") + "?format=json").json()
    detail = client.get(reverse("api-project", args=[project.slug])).json()

    components = schema["components"]["schemas"]
    prop = components["ProjectOutput"]["properties"]["al_strategy"]
    enum = components[prop["allOf"][0]["$ref"].rsplit("/", 1)[-1]]["enum"]
    assert list(enum) == list(STRATEGIES)
    assert detail["al_strategy"] == "diverse_margin"
    assert detail["backbone"] == BUNDLED_BACKBONE


def test_api_docs_page_has_no_internal_wording(project, member_of):
    client = page_client(member_of(project, Role.ML_ENGINEER))

    html = client.get(reverse("api-docs")).content.decode()

    assert "Mixin" not in html
    assert "self.project" not in html
    assert "ProjectCapability" not in html
    # Every endpoint says what it does.
    summaries = re.findall(r'<summary><span class="method[^>]*>.*?</summary>', html, flags=re.S)
    assert len(summaries) > 20
    assert all(" — " in s for s in summaries)


# ---- the overview: one page for the figures that were on Overview and Dashboard ------------------------------


@pytest.fixture
def busy_project(project, label_class_factory, item_factory, member_of):
    cat = label_class_factory(project=project, name="cat")
    dog = label_class_factory(project=project, name="dog")
    ann = member_of(project, Role.ANNOTATOR, "ann")
    items = [item_factory(project=project) for _ in range(6)]
    for item in items[:3]:
        item.project = project
        annotation_create(item=item, user=ann, class_ids=[cat.pk])
    annotation_undo(project=project, user=ann)  # the third label is withdrawn
    annotation_skip(item=items[3], user=ann)
    return {"project": project, "ann": ann, "cat": cat, "dog": dog, "items": items}


def test_the_overview_shows_everything_the_dashboard_did_to_a_manager(busy_project, member_of):
    project = busy_project["project"]
    manager = page_client(member_of(project, Role.MANAGER))

    html = manager.get(reverse("labeling:project_detail", args=[project.slug])).content.decode()

    assert re.search(r'id="stat-total">6<', html)
    assert re.search(r'id="stat-labeled">2<', html)
    row = re.search(r"<tr><td>ann</td>(.*?)</tr>", html, flags=re.S).group(1)
    today, week, skips = (int(v) for v in re.findall(r"<td>(\d+)</td>", row)[:3])
    assert (today, week, skips) == (2, 2, 1)  # the undone label counts nowhere, the skip apart
    assert Annotation.objects.filter(user=busy_project["ann"], skipped=False, undoes__isnull=True).count() == 3
    classes = re.search(r'id="classes".*?</table>', html, flags=re.S).group(0)
    assert re.search(r"<td>cat</td><td>2</td>", classes)
    assert re.search(r"<td>dog</td><td>0</td>", classes)


def test_an_annotator_sees_the_counts_but_not_the_team(busy_project):
    project = busy_project["project"]
    annotator = page_client(busy_project["ann"])

    html = annotator.get(reverse("labeling:project_detail", args=[project.slug])).content.decode()

    assert re.search(r'id="stat-total">6<', html)
    assert 'id="annotators"' not in html
    assert 'id="classes"' not in html


def test_the_dashboard_url_leads_to_the_overview_and_the_nav_has_one_entry(busy_project, member_of):
    project = busy_project["project"]
    manager = page_client(member_of(project, Role.MANAGER))

    response = manager.get(reverse("labeling:dashboard", args=[project.slug]), follow=True)

    overview = reverse("labeling:project_detail", args=[project.slug])
    assert response.redirect_chain[-1][0].startswith(overview)
    html = response.content.decode()
    nav = re.search(r'<nav class="project-nav".*?</nav>', html, flags=re.S).group(0)
    assert ">Overview<" in nav
    assert ">Dashboard<" not in nav
    assert reverse("labeling:dashboard", args=[project.slug]) not in nav
    assert "queue depth" in html
