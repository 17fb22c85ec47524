"""Classes under an archived class are archived too (labeling.services.projects.label_class_archive does so since
stop 56). Before, archiving a parent left its subclasses active: offered by the labeling page's search, taking
labels, and shown with keys that were other classes'. This archives every such class; their labels stay."""

from django.db import migrations


def archive_under_archived(apps, schema_editor):
    label_class = apps.get_model("labeling", "LabelClass")
    rows = list(label_class.objects.values_list("pk", "parent_id", "archived"))
    parent = {pk: parent_id for pk, parent_id, _ in rows}
    archived = {pk for pk, _, gone in rows if gone}
    stray = []
    for pk, _, gone in rows:
        node, seen = parent.get(pk), {pk}
        while not gone and node is not None and node not in seen:
            if node in archived:
                stray.append(pk)
                break
            seen.add(node)
            node = parent.get(node)
    label_class.objects.filter(pk__in=stray).update(archived=True)


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0013_job_number"),
    ]

    operations = [
        migrations.RunPython(archive_under_archived, migrations.RunPython.noop),
    ]
