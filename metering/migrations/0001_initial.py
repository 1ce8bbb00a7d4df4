"""Metering becomes its own app: `Event` (from `billing`) and `CachedAggregation` (from
`customers`) move here in Django's state only. Their tables, rows, constraints and indexes stay
as they are (`db_table` keeps the old names), and their content types follow them, so that admin
log entries and object permissions keep pointing at the right model."""

import django.core.serializers.json
import django.db.models.deletion
from decimal import Decimal
from django.db import migrations, models

MOVED = (("billing", "event"), ("customers", "cachedaggregation"))


def move_content_types(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for old_app, model in MOVED:
        if not ContentType.objects.filter(app_label="metering", model=model).exists():
            ContentType.objects.filter(app_label=old_app, model=model).update(app_label="metering")


def restore_content_types(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for old_app, model in MOVED:
        if not ContentType.objects.filter(app_label=old_app, model=model).exists():
            ContentType.objects.filter(app_label="metering", model=model).update(app_label=old_app)


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("billing", "0002_events"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("customers", "0003_cached_aggregation"),
        ("plans", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="Event",
                    fields=[
                        ("id", models.BigAutoField(primary_key=True, serialize=False)),
                        ("transaction_id", models.CharField(max_length=255)),
                        ("external_subscription_id", models.CharField(max_length=255)),
                        ("code", models.CharField(max_length=255)),
                        ("timestamp", models.DateTimeField()),
                        ("properties", models.JSONField(blank=True, default=dict, encoder=django.core.serializers.json.DjangoJSONEncoder)),
                        ("precise_total_amount_cents", models.DecimalField(decimal_places=15, default=Decimal("0"), max_digits=40)),
                        ("value", models.DecimalField(blank=True, decimal_places=15, max_digits=40, null=True)),
                        ("subscription_id", models.UUIDField(blank=True, null=True)),
                        ("customer_id", models.UUIDField(blank=True, null=True)),
                        ("created_at", models.DateTimeField()),
                        ("deleted_at", models.DateTimeField(blank=True, null=True)),
                        ("organization", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="billing.organization")),
                    ],
                    options={
                        "db_table": "billing_event",
                        "ordering": ("-timestamp", "-id"),
                        "indexes": [models.Index(fields=["organization", "external_subscription_id", "code", "timestamp"], name="billing_event_aggregation_idx"), models.Index(fields=["organization", "-timestamp", "-id"], name="billing_event_list_idx"), models.Index(fields=["organization", "transaction_id"], name="billing_event_txn_idx")],
                        "constraints": [models.UniqueConstraint(fields=("organization", "external_subscription_id", "transaction_id"), name="billing_event_transaction_unique")],
                    },
                ),
                migrations.CreateModel(
                    name="CachedAggregation",
                    fields=[
                        ("id", models.BigAutoField(primary_key=True, serialize=False)),
                        ("grouped_by", models.JSONField(blank=True, default=dict)),
                        ("bucket_key", models.TextField()),
                        ("scope_digest", models.CharField(max_length=32)),
                        ("period_from", models.DateTimeField()),
                        ("event_id", models.BigIntegerField()),
                        ("event_transaction_id", models.CharField(max_length=255)),
                        ("event_timestamp", models.DateTimeField()),
                        ("current_aggregation", models.DecimalField(decimal_places=30, max_digits=60)),
                        ("max_aggregation", models.DecimalField(decimal_places=30, max_digits=60)),
                        ("events_count", models.PositiveIntegerField()),
                        ("precise_total_amount_cents", models.DecimalField(decimal_places=15, max_digits=60)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("charge", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="plans.charge")),
                        ("charge_filter", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="plans.chargefilter")),
                        ("organization", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="billing.organization")),
                        ("subscription", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="customers.subscription")),
                    ],
                    options={
                        "db_table": "customers_cachedaggregation",
                        "indexes": [models.Index(fields=["charge", "subscription", "bucket_key", "period_from", "-event_timestamp", "-event_id"], name="customers_cachedagg_latest_idx")],
                        "constraints": [models.UniqueConstraint(fields=("event_transaction_id", "subscription", "charge", "charge_filter"), name="customers_cachedaggregation_event_unique", nulls_distinct=False)],
                    },
                ),
            ],
        ),
        migrations.RunPython(move_content_types, restore_content_types),
    ]
