from django.apps import AppConfig


class MeteringConfig(AppConfig):
    name = "metering"
    verbose_name = "Events & usage"

    def ready(self) -> None:
        from django.core import checks

        from metering.ports import check_ports_bound

        # the port invoicing must bind (metering.E001 stops start-up while it is unbound)
        checks.register(check_ports_bound)

        # the subscription admin page shows the usage monitoring panel
        from customers import ports as customer_ports
        from metering.presenters import subscription_panels

        customer_ports.subscription_panels.bind(subscription_panels)

        # ingestion queues a refresh pass a few seconds after events (the beat is the fallback)
        from metering import hooks, tasks

        hooks.on_events_ingested.connect(tasks.queue_refresh_after_events)

        # usage alerts as the activity log renders them (billing.activity)
        from metering import wire

        wire.register_activity()
