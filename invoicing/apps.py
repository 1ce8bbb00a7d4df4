from django.apps import AppConfig


class InvoicingConfig(AppConfig):
    name = "invoicing"
    verbose_name = "Invoicing"

    def ready(self) -> None:
        from customers import hooks
        from invoicing import pdf  # noqa: F401  (registers generate_invoice_pdf_task)
        from invoicing.tasks import enqueue_in_advance_fees
        from metering import hooks as metering_hooks

        # spec §7.14: every ingested event of a pay-in-advance charge bills its fee
        metering_hooks.register(metering_hooks.on_events_ingested)(enqueue_in_advance_fees)

        # spec §9.3-§9.5, §11: subscription transitions bill their invoices (after commit)
        from invoicing import tasks

        hooks.register(hooks.on_subscription_started)(tasks.on_subscription_started)
        hooks.register(hooks.on_subscription_terminated)(tasks.on_subscription_terminated)
        hooks.register(hooks.on_plan_changed)(tasks.on_plan_changed)
        hooks.register(hooks.on_trial_ended)(tasks.on_trial_ended)

        # spec §17.3: a paid wallet top-up is billed by a `credit` invoice
        from invoicing.services.credit_invoices import credit_invoice_create
        from wallets import hooks as wallet_hooks

        wallet_hooks.create_paid_credits_invoice.register(credit_invoice_create)

        # spec §17.4: draft invoices count in the wallets' ongoing balance
        from invoicing.selectors import draft_invoices_for_wallets
        from wallets.hooks import draft_invoices_for_customer

        draft_invoices_for_customer.register(draft_invoices_for_wallets)

        # spec §15.2: applied coupons show the credits drawn from them and what is left
        from customers.hooks import coupon_credits
        from invoicing.selectors import coupon_credits_by_applied_coupon

        coupon_credits.register(coupon_credits_by_applied_coupon)
