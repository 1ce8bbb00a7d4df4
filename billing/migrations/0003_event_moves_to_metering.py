"""`Event` now belongs to the `metering` app (its table `billing_event` stays)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("billing", "0002_events"),
        ("metering", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[], state_operations=[migrations.DeleteModel(name="Event")]
        ),
    ]
