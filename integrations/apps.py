from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        from customers import hooks as customer_hooks
        from integrations import tasks

        # spec §19.2: a customer saved with provider settings is created or linked at the
        # provider once the change is committed
        customer_hooks.on_customer_payment_provider_set.connect(
            tasks.on_customer_payment_provider_set
        )
