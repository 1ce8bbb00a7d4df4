from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations & webhooks"

    def ready(self) -> None:
        from billing import outbox
        from customers import hooks as customer_hooks
        from integrations import tasks
        from invoicing import hooks as invoicing_hooks

        # a customer saved with payment provider settings is created or linked at the provider
        # once the change is committed
        customer_hooks.on_customer_payment_provider_set.connect(
            tasks.on_customer_payment_provider_set
        )
        # a finalized invoice of a Stripe customer is charged; a credit note refund is refunded
        invoicing_hooks.on_invoice_finalized.connect(tasks.on_invoice_finalized)
        # a wallet top-up invoice and a payment request of a Stripe customer are charged too
        invoicing_hooks.on_credit_invoice_created.connect(tasks.on_invoice_finalized)
        invoicing_hooks.on_payment_request_created.connect(tasks.on_payment_request_created)
        invoicing_hooks.on_credit_note_refund_requested.connect(
            tasks.on_credit_note_refund_requested
        )
        # every commit that recorded outbox rows drains them into webhook deliveries
        outbox.on_events_recorded.connect(tasks.drain_soon)

        # webhook endpoints and payment methods as the activity log renders them
        from integrations import wire

        wire.register_activity()
