# Pre-aggregated rows are updated by almost every ingested batch. With PostgreSQL's default
# fillfactor (100) a page has no room for the new version of a row, so each update also inserts
# into both indexes; at 50 the update stays on its page (a HOT update, no index write). Measured
# on a 100-event batch (docs/benchmarks.md): the statement's backend CPU 10.6 -> 6.6 ms.
# The setting applies to pages written from now on; `VACUUM FULL` on both tables rewrites the
# existing ones (it locks the tables: run it with ingestion paused).

from django.db import migrations

TABLES = ("metering_event_rollup", "metering_event_property_state")


def set_fillfactor(value):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for table in TABLES:
            schema_editor.execute(f"ALTER TABLE {table} SET (fillfactor = {int(value)})")

    return apply


class Migration(migrations.Migration):

    dependencies = [
        ("metering", "0003_preagg_rollups"),
    ]

    operations = [
        migrations.RunPython(set_fillfactor(50), set_fillfactor(100)),
    ]
