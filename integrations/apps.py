from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations & webhooks"

    def ready(self) -> None:
        from billing import outbox
        from integrations import tasks

        # every commit that recorded outbox rows drains them into webhook deliveries
        outbox.on_events_recorded.connect(tasks.drain_soon)
