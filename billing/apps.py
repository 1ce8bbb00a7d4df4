from django.apps import AppConfig
from django.db.models.signals import post_delete, post_migrate, post_save


def _after_migrate(sender: AppConfig, **kwargs: object) -> None:
    from billing.roles import ensure_role_groups
    from billing.schedules import sync_beat_schedule

    ensure_role_groups()
    sync_beat_schedule()


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Organizations & API"

    def ready(self) -> None:
        # Without a sender: role groups must see the permissions of every app, which exist only
        # once each app's own post_migrate has run; the handler is idempotent.
        post_migrate.connect(_after_migrate, dispatch_uid="billing_after_migrate")

        from billing.api.authentication import forget_organization_api_keys, forget_saved_api_key
        from billing.models import ApiKey, Organization

        # cached API keys (billing.api.authentication) go when a key or its organization changes
        post_save.connect(forget_saved_api_key, sender=ApiKey, dispatch_uid="api_key_saved")
        post_delete.connect(forget_saved_api_key, sender=ApiKey, dispatch_uid="api_key_deleted")
        post_save.connect(
            forget_organization_api_keys, sender=Organization, dispatch_uid="organization_saved"
        )

        from billing.wire import register_activity

        register_activity()
