# Property states are kept for the events of unique-count metrics only; a rollup row counts the
# events carrying the field that kept none (`n_stateless`), so that a unique count over them
# reads the events. Every existing row kept a state for each of its events: 0 is right for
# them, and PostgreSQL adds a column with a constant default without rewriting the table.
# The existing states of other metrics stay (a metric switched to unique count reads them).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("metering", "0004_rollup_fillfactor"),
    ]

    operations = [
        migrations.AddField(
            model_name="eventrollup",
            name="n_stateless",
            field=models.BigIntegerField(db_default=0),
        ),
    ]
