"""Project.granted_import_roots (server folders staff grant to one project) and the "project creators" group."""

from django.db import migrations, models

# The name labeling.permissions.PROJECT_CREATORS looks up; a migration keeps its own copy (it must not change).
PROJECT_CREATORS = "project creators"


def create_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.get_or_create(name=PROJECT_CREATORS)


def delete_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=PROJECT_CREATORS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("labeling", "0007_annotation_user_skip_idx"),
    ]

    operations = [
        migrations.AddField(
            model_name="project",
            name="granted_import_roots",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="Server folders (each inside LABELLOOP_IMPORT_ROOTS) that this project's managers may "
                "import from and ML engineers may run batch inference on. Staff may use every "
                "LABELLOOP_IMPORT_ROOTS folder anyway.",
                verbose_name="Granted server folders",
            ),
        ),
        migrations.RunPython(create_group, delete_group),
    ]
