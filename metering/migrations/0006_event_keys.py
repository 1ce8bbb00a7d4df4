# Cheaper event inserts (docs/event-store.md "Storage"): one index fewer and no foreign-key
# check per row.
# - The dedup key becomes (organization, transaction_id, external_subscription_id): the same
#   index then also finds an event by its transaction id alone (GET /events/{transaction_id}),
#   which `billing_event_txn_idx` did; that index goes.
# - The organization column keeps no database constraint (only the store writes events, with
#   the API key's organization; the ORM still deletes an organization's events with it).
# On a large table the new unique index takes a while to build and the table is locked
# meanwhile: run it with ingestion paused, or build the index beforehand with
# `CREATE UNIQUE INDEX CONCURRENTLY` and attach it (docs/event-store.md).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("billing", "0007_outbox_rendered"),
        ("metering", "0005_states_unique_only"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="event",
            name="billing_event_transaction_unique",
        ),
        migrations.AddConstraint(
            model_name="event",
            constraint=models.UniqueConstraint(
                fields=("organization", "transaction_id", "external_subscription_id"),
                name="billing_event_transaction_unique",
            ),
        ),
        migrations.RemoveIndex(
            model_name="event",
            name="billing_event_txn_idx",
        ),
        migrations.AlterField(
            model_name="event",
            name="organization",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="billing.organization",
            ),
        ),
    ]
