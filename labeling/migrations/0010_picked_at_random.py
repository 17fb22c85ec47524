# Which queue items are random draws of the last scoring, and whether a label was made on one (issue 16: the
# random share of each batch). Existing rows are False: no earlier scoring drew at random.

from django.db import migrations, models

ITEM_HELP = (
    "The last scoring put this item in the top batch as a uniform random draw (a share of each batch after the cold "
    "start, default strategy only), not as the strategy's pick. Rewritten with the priorities."
)
ANNOTATION_HELP = (
    "The item was a random draw of the queue (Item.picked_at_random) when this label was made: labels on random "
    "draws estimate the model's accuracy on the pool without the strategy's bias."
)


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0009_project_training_mode_auto"),
    ]

    operations = [
        migrations.AddField(
            model_name="annotation",
            name="picked_at_random",
            field=models.BooleanField(default=False, help_text=ANNOTATION_HELP),
        ),
        migrations.AddField(
            model_name="item",
            name="picked_at_random",
            field=models.BooleanField(default=False, help_text=ITEM_HELP),
        ),
    ]
