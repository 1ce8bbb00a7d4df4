from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _after_migrate(sender: AppConfig, **kwargs: object) -> None:
    from billing.roles import ensure_role_groups
    from billing.schedules import sync_beat_schedule

    ensure_role_groups()
    sync_beat_schedule()


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Organizations & API"

    def ready(self) -> None:
        post_migrate.connect(_after_migrate, sender=self, dispatch_uid="billing_after_migrate")
