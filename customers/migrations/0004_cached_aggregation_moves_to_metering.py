"""`CachedAggregation` now belongs to the `metering` app (its table stays)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("customers", "0003_cached_aggregation"),
        ("metering", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[migrations.DeleteModel(name="CachedAggregation")],
        ),
    ]
