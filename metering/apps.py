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

        # usage alerts as the activity log renders them (billing.activity)
        from metering import wire

        wire.register_activity()
