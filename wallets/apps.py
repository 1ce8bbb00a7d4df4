from django.apps import AppConfig


class WalletsConfig(AppConfig):
    name = "wallets"
    verbose_name = "Wallets & prepaid credits"

    def ready(self) -> None:
        from django.core import checks

        from metering import hooks
        from wallets.ports import check_ports_bound
        from wallets.services.ongoing import flag_wallets_for_events

        # the ports invoicing must bind (wallets.E001 stops start-up while one is unbound)
        checks.register(check_ports_bound)
        # spec §17.4: new usage flags the customer's wallets for the ongoing balance refresh
        hooks.on_events_ingested.connect(flag_wallets_for_events)
