from django.apps import AppConfig


class InvoicingConfig(AppConfig):
    name = "invoicing"
    verbose_name = "Invoicing"

    def ready(self) -> None:
        from customers import hooks as customer_hooks
        from invoicing import (
            pdf,  # noqa: F401  (registers generate_invoice_pdf_task)
            receipt_pdf,  # noqa: F401  (registers generate_payment_receipt_pdf_task)
            tasks,
        )
        from metering import hooks as metering_hooks

        # spec §7.14: every ingested event of a pay-in-advance charge bills its fee
        metering_hooks.on_events_ingested.connect(tasks.enqueue_in_advance_fees)

        # spec §9.3-§9.5, §11: subscription transitions bill their invoices (after commit)
        customer_hooks.on_subscription_started.connect(tasks.on_subscription_started)
        customer_hooks.on_subscription_terminated.connect(tasks.on_subscription_terminated)
        customer_hooks.on_plan_changed.connect(tasks.on_plan_changed)
        customer_hooks.on_trial_ended.connect(tasks.on_trial_ended)

        # The wallets ports (`wallets.ports`; the `wallets.E001` check fails while one is unbound)
        from invoicing.selectors import draft_invoices_for_wallets, invoice_labels_for_wallets
        from invoicing.services.credit_invoices import credit_invoice_create
        from wallets import ports as wallet_ports

        # spec §17.3: a paid wallet top-up is billed by a `credit` invoice
        wallet_ports.create_paid_credits_invoice.bind(credit_invoice_create)
        # spec §17.4: draft invoices count in the wallets' ongoing balance
        wallet_ports.draft_invoices_for_customer.bind(draft_invoices_for_wallets)
        # the wallet ledger names invoices by their numbers
        wallet_ports.invoice_labels.bind(invoice_labels_for_wallets)
        # spec §17.4, §21.2: usage billed by progressive billing invoices is not ongoing
        from invoicing.selectors import progressive_billed_fees_for_wallets

        wallet_ports.progressive_billed_fees.bind(progressive_billed_fees_for_wallets)

        # the invoiced part of lifetime usage: charge fees of the subscriptions' invoices
        from invoicing.selectors import invoiced_usage_by_subscription, invoiced_usage_for_lifetime
        from metering import ports as metering_ports

        metering_ports.invoiced_usage_amount_cents.bind(invoiced_usage_for_lifetime)
        metering_ports.invoiced_usage_by_subscription.bind(invoiced_usage_by_subscription)
        # progressive billing on the lifetime usage and the subscription page
        from invoicing.selectors import progressive_invoices_of_period, usage_thresholds_reached_at

        metering_ports.usage_thresholds_reached_at.bind(usage_thresholds_reached_at)
        metering_ports.progressive_invoices.bind(progressive_invoices_of_period)

        # spec §21.2: each refresh pass checks the progressive billing thresholds
        from invoicing.services.progressive_billing import progressive_billing_after_usage_pass

        metering_hooks.on_usage_refreshed.connect(progressive_billing_after_usage_pass)

        # the customer 360 page shows every app's panels, in the order declared there
        from customers import ports as customer_ports
        from invoicing.customer_360 import customer_360_panels

        customer_ports.customer_360_panels.bind(customer_360_panels)
        # applied coupons show the credits drawn from them and what is left
        from invoicing.selectors import coupon_credits_by_applied_coupon

        customer_ports.coupon_credits.bind(coupon_credits_by_applied_coupon)

        # invoices and fees as webhooks send them (billing.wire_objects)
        from invoicing import wire

        wire.register()
        wire.register_activity()
