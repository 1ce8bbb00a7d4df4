from django.apps import AppConfig
from django.core import checks


class CustomersConfig(AppConfig):
    name = "customers"
    verbose_name = "Customers & subscriptions"

    def ready(self) -> None:
        from customers.ports import check_ports_bound

        # the port invoicing must bind (customers.E001 stops start-up while it is unbound)
        checks.register(check_ports_bound)

        # customers and subscriptions as webhooks send them (billing.wire_objects)
        from customers import wire

        wire.register()
        wire.register_activity()
