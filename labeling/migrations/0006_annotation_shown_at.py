# When each annotation's image was shown (issue 13: typed-ahead keys labeled images nobody saw). Existing rows
# keep NULL: their display time was never recorded.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('labeling', '0005_project_flip_average'),
    ]

    operations = [
        migrations.AddField(
            model_name='annotation',
            name='shown_at',
            field=models.DateTimeField(blank=True, help_text="When the item's image was shown to the annotator (as the client reports it; empty when it did not say). A label may only apply to an image that was on screen when its key was pressed, so shown_at <= created_at. A time up to a minute ahead of the server's clock (client clock skew) is stored as the server's now; further ahead is rejected.", null=True),
        ),
        migrations.AddConstraint(
            model_name='annotation',
            constraint=models.CheckConstraint(condition=models.Q(('shown_at__isnull', True), ('shown_at__lte', models.F('created_at')), _connector='OR'), name='annotation_shown_before_created'),
        ),
    ]
