# An import looks up the split of each new image's perceptual hash, one query per batch, so near-duplicates share
# a split (labeling.services.imports.items). Index only: no row changes, existing items keep their split.
# A plain CREATE INDEX on SQLite and PostgreSQL (100k items: about a second).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0010_picked_at_random"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="item",
            index=models.Index(fields=["project", "phash", "split"], name="item_phash_idx"),
        ),
    ]
