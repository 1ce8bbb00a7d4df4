from django.apps import AppConfig


class WalletsConfig(AppConfig):
    name = "wallets"
    verbose_name = "Wallets & prepaid credits"

    def ready(self) -> None:
        from django.core import checks

        from wallets.ports import check_ports_bound

        checks.register(check_ports_bound)

        from metering import hooks
        from wallets.services.ongoing import flag_wallets_for_events

        # spec §17.4: new usage flags the customer's wallets for the ongoing balance refresh
        hooks.register(hooks.on_events_ingested)(flag_wallets_for_events)
