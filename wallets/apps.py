from django.apps import AppConfig


class WalletsConfig(AppConfig):
    name = "wallets"
    verbose_name = "Wallets & prepaid credits"

    def ready(self) -> None:
        from metering import hooks
        from wallets.tasks import queue_refresh_for_events

        # spec §17.4: new usage refreshes the customer's wallets' ongoing balance (debounced)
        hooks.register(hooks.on_events_ingested)(queue_refresh_for_events)
