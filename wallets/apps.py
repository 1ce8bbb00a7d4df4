from django.apps import AppConfig


class WalletsConfig(AppConfig):
    name = "wallets"
    verbose_name = "Wallets & prepaid credits"

    def ready(self) -> None:
        from django.core import checks

        from metering import hooks
        from wallets.ports import check_ports_bound
        from wallets.tasks import queue_refresh_for_events, refresh_after_usage_pass

        # the ports invoicing must bind (wallets.E001 stops start-up while one is unbound)
        checks.register(check_ports_bound)
        # spec §17.4: new usage refreshes the customer's wallets' ongoing balance (debounced)
        hooks.on_events_ingested.connect(queue_refresh_for_events)
        # the usage refresh pass ends with the flagged wallets of the customers it refreshed
        hooks.on_usage_refreshed.connect(refresh_after_usage_pass)

        # wallets, their transactions and triggered alerts as webhooks send them
        from wallets import wire

        wire.register()
