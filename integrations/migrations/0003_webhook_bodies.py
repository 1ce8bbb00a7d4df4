"""One body per recorded event, shared by its deliveries (one per endpoint), instead of a copy of
the body in every delivery row; the body keeps the JWT signature made for it."""

import django.db.models.deletion
from django.db import migrations, models

BATCH = 1_000


def bodies_from_deliveries(apps, schema_editor):
    """A body for each event delivered so far, from one of its deliveries' copies (the copies
    of an event are the same text: one rendering per event)."""
    WebhookDelivery = apps.get_model("integrations", "WebhookDelivery")
    WebhookBody = apps.get_model("integrations", "WebhookBody")
    pending, seen = [], set()
    rows = WebhookDelivery.objects.order_by("outbox_event_id").values_list(
        "outbox_event_id", "organization_id", "payload"
    )
    for event_id, organization_id, payload in rows.iterator(chunk_size=BATCH):
        if event_id in seen:
            continue
        seen.add(event_id)
        pending.append(WebhookBody(id=event_id, organization_id=organization_id, text=payload))
        if len(pending) >= BATCH:
            WebhookBody.objects.bulk_create(pending, ignore_conflicts=True)
            pending = []
    WebhookBody.objects.bulk_create(pending, ignore_conflicts=True)
    WebhookDelivery.objects.update(body_id=models.F("outbox_event_id"))


def payloads_from_bodies(apps, schema_editor):
    WebhookDelivery = apps.get_model("integrations", "WebhookDelivery")
    for delivery in WebhookDelivery.objects.select_related("body").iterator(chunk_size=BATCH):
        WebhookDelivery.objects.filter(pk=delivery.pk).update(payload=delivery.body.text)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0004_outbox_actor"),
        ("integrations", "0002_webhooks"),
    ]

    operations = [
        migrations.CreateModel(
            name="WebhookBody",
            fields=[
                ("id", models.BigIntegerField(primary_key=True, serialize=False)),
                ("text", models.TextField()),
                ("jwt_signature", models.TextField(blank=True, default="")),
                ("jwt_signer", models.CharField(blank=True, default="", max_length=64)),
                ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                (
                    "organization",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="billing.organization",
                    ),
                ),
            ],
            options={"verbose_name": "webhook body"},
        ),
        migrations.AddField(
            model_name="webhookdelivery",
            name="body",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="deliveries",
                to="integrations.webhookbody",
            ),
        ),
        migrations.AlterField(
            model_name="webhookdelivery",
            name="payload",
            field=models.TextField(default=""),
        ),
        migrations.RunPython(bodies_from_deliveries, payloads_from_bodies),
        migrations.AlterField(
            model_name="webhookdelivery",
            name="body",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="deliveries",
                to="integrations.webhookbody",
            ),
        ),
        migrations.RemoveField(model_name="webhookdelivery", name="payload"),
    ]
