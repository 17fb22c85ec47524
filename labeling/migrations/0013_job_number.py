"""Jobs get a number within their project (1, 2, 3 ...). Existing jobs are numbered per project in the order they
were created (created_at, then pk); their pks, and so every URL that names them, stay as they were."""

from django.db import migrations, models


def number_existing_jobs(apps, schema_editor):
    job = apps.get_model("labeling", "Job")
    numbered, project_id, number = [], None, 0
    for row in job.objects.order_by("project_id", "created_at", "pk").only("pk", "project_id").iterator():
        number = number + 1 if row.project_id == project_id else 1
        project_id = row.project_id
        row.number = number
        numbered.append(row)
    job.objects.bulk_update(numbered, ["number"], batch_size=500)


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0012_admin_names"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="number",
            field=models.PositiveIntegerField(null=True, editable=False),
        ),
        migrations.RunPython(number_existing_jobs, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="job",
            name="number",
            field=models.PositiveIntegerField(
                editable=False, help_text="The job's number within its project: 1, 2, 3 ..."
            ),
        ),
        migrations.AddConstraint(
            model_name="job",
            constraint=models.UniqueConstraint(fields=("project", "number"), name="job_unique_number_per_project"),
        ),
    ]
