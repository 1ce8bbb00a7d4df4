from django.apps import AppConfig


class PlansConfig(AppConfig):
    name = "plans"
    verbose_name = "Catalog"

    def ready(self) -> None:
        # plans and billable metrics as webhooks send them (billing.wire_objects)
        from plans import wire

        wire.register()
        wire.register_activity()
