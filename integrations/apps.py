from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations & webhooks"

    def ready(self) -> None:
        from billing import outbox
        from customers import hooks as customer_hooks
        from integrations import tasks

        # a customer saved with payment provider settings is created or linked at the provider
        # once the change is committed
        customer_hooks.on_customer_payment_provider_set.connect(
            tasks.on_customer_payment_provider_set
        )
        # every commit that recorded outbox rows drains them into webhook deliveries
        outbox.on_events_recorded.connect(tasks.drain_soon)
