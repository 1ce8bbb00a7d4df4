"""Twelve months of invoice history for the demo, so the finance overview has figures to show.

A dozen customers on the demo catalog's plans, each with a monthly invoice per month they were
subscribed: subscription fees, growing API usage, fixed charges, commitment true-ups and
one-off onboarding fees, mostly paid, some late, overdue or failed, one voided; one customer
upgrades from Starter to Business and one churns. Amounts go through `invoicing.calculation`
(taxes and totals as the engine computes them). The rows are written in bulk, as an import of
past billing would be: the seeding stays fast, and it is deterministic for a given month.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from billing.actors import SYSTEM
from billing.models import Organization
from billing.money import round_cents, to_major
from customers.models import Customer, Subscription
from customers.services.customers import customer_create
from invoicing import calculation
from invoicing.analytics import add_months
from invoicing.models import (
    Fee,
    FeeAppliedTax,
    Invoice,
    InvoiceAppliedTax,
    InvoiceSubscription,
    Payment,
)
from invoicing.services.analytics_figures import figures_rebuild
from plans.models import AddOn, Charge, FixedCharge, Plan, Tax

MONTHS = 12
VAT = "vat_fr_20"


@dataclass(frozen=True)
class HistoryCustomer:
    external_id: str
    name: str
    country: str
    plan: str  # starter, business or enterprise_yearly
    start: int  # months ago the subscription started (11 = the first month of the history)
    calls: int  # API calls in the first month; they grow 12 % a month
    end: int | None = None  # months ago it churned
    upgrade_to_business: int | None = None  # months ago it moved from starter to business
    pays: str = "on_time"  # on_time, late (last two months overdue), failed (last month)


CUSTOMERS = (
    HistoryCustomer("demo_h_northwind", "Northwind Traders", "FR", "business", 11, 180_000),
    HistoryCustomer("demo_h_contoso", "Contoso Ltd", "GB", "business", 11, 260_000, pays="late"),
    HistoryCustomer(
        "demo_h_initech", "Initech", "US", "starter", 11, 40_000, upgrade_to_business=5
    ),
    HistoryCustomer("demo_h_umbrella", "Umbrella Health", "DE", "enterprise_yearly", 9, 300_000),
    HistoryCustomer("demo_h_hooli", "Hooli", "US", "starter", 10, 25_000, end=4),
    HistoryCustomer("demo_h_stark", "Stark Industries", "US", "business", 8, 400_000),
    HistoryCustomer("demo_h_wayne", "Wayne Enterprises", "US", "starter", 6, 30_000),
    HistoryCustomer("demo_h_soylent", "Soylent Foods", "NL", "business", 3, 220_000),
    HistoryCustomer("demo_h_tyrell", "Tyrell Corporation", "FR", "starter", 11, 60_000),
    HistoryCustomer(
        "demo_h_cyberdyne", "Cyberdyne Systems", "ES", "business", 6, 150_000, pays="failed"
    ),
    HistoryCustomer("demo_h_aperture", "Aperture Science", "IT", "starter", 2, 20_000),
    HistoryCustomer("demo_h_globex", "Globex Corporation", "FR", "enterprise_yearly", 1, 120_000),
)


def _instant(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


class _Writer:
    """Collects the rows of the history, then writes them in a few bulk inserts."""

    def __init__(self, organization: Organization, today: date) -> None:
        self.organization = organization
        self.today = today
        self.invoices: list[Invoice] = []
        self.fees: list[tuple[Fee, datetime]] = []
        self.fee_taxes: list[FeeAppliedTax] = []
        self.invoice_taxes: list[InvoiceAppliedTax] = []
        self.periods: list[InvoiceSubscription] = []
        self.payments: list[tuple[Payment, datetime]] = []
        self.tax = Tax.objects.for_organization(organization).get(code=VAT)
        self.numbers = 0

    def invoice(
        self,
        customer: Customer,
        issuing: date,
        lines: list[tuple[Fee, calculation.FeeLine]],
        *,
        invoice_type: str,
        pays: str,
        months_ago: int,
        subscription: Subscription | None = None,
        period: tuple[date, date] | None = None,
        voided: bool = False,
    ) -> None:
        computed = calculation.compute_invoice([line for _, line in lines], currency="EUR")
        totals = computed.totals
        self.numbers += 1
        due = issuing + timedelta(days=30)
        overdue_now = due < self.today
        status, paid, overdue = "succeeded", totals.total_amount_cents, False
        if not overdue_now or (pays == "late" and months_ago <= 2):
            status, paid, overdue = "pending", 0, overdue_now
        if pays == "failed" and months_ago == 1:
            status, paid, overdue = "failed", 0, overdue_now
        if voided:
            status, paid, overdue = "pending", 0, False
        invoice = Invoice(
            organization=self.organization,
            billing_entity=customer.billing_entity,
            customer=customer,
            invoice_type=invoice_type,
            status=Invoice.Status.VOIDED if voided else Invoice.Status.FINALIZED,
            payment_status=status,
            number=f"DEMO-H{issuing:%y%m}-{self.numbers:04d}",
            issuing_date=issuing,
            payment_due_date=due,
            net_payment_term=30,
            payment_overdue=overdue,
            currency="EUR",
            fees_amount_cents=totals.fees_amount_cents,
            coupons_amount_cents=totals.coupons_amount_cents,
            sub_total_excluding_taxes_amount_cents=totals.sub_total_excluding_taxes_amount_cents,
            taxes_amount_cents=totals.taxes_amount_cents,
            taxes_rate=totals.taxes_rate,
            sub_total_including_taxes_amount_cents=totals.sub_total_including_taxes_amount_cents,
            total_amount_cents=totals.total_amount_cents,
            total_paid_amount_cents=paid,
            finalized_at=_instant(issuing),
            voided_at=_instant(issuing) + timedelta(days=2) if voided else None,
        )
        self.invoices.append(invoice)
        if paid:
            # a bank transfer some days after issuing; late payers pay past the due date
            days = 40 if pays == "late" else 8 + self.numbers % 15
            payment = Payment(
                organization=self.organization, customer=customer, invoice=invoice,
                amount_cents=paid, amount_currency="EUR",
                payment_type=Payment.PaymentType.MANUAL, status="succeeded",
                payable_payment_status=Payment.PayableStatus.SUCCEEDED,
                reference="Bank transfer",
            )  # fmt: skip
            self.payments.append((payment, _instant(issuing) + timedelta(days=days, hours=10)))
        if period is not None:  # the billed period, as the invoice page and PDF show it
            start, end = _instant(period[0]), _instant(period[1]) + timedelta(days=1, seconds=-1)
            bounds = {"from_datetime": start.isoformat(), "to_datetime": end.isoformat()}
            bounds |= {f"charges_{key}": value for key, value in bounds.items()}
        for fee, line in lines:
            if period is not None and fee.fee_type != "add_on":
                fee.properties = {**(fee.properties or {}), **bounds}
            fee.invoice = invoice
            fee.taxes_amount_cents = line.taxes_amount_cents
            fee.taxes_precise_amount_cents = line.taxes_precise_amount_cents
            fee.taxes_rate = line.taxes_rate
            fee.precise_coupons_amount_cents = line.precise_coupons_amount_cents
            fee.payment_status = status if status != "pending" else "pending"
            self.fees.append((fee, _instant(issuing) + timedelta(hours=2)))
            for applied in line.applied_taxes:
                self.fee_taxes.append(
                    FeeAppliedTax(
                        organization=self.organization,
                        fee=fee,
                        tax=self.tax,
                        tax_name=self.tax.name,
                        tax_code=self.tax.code,
                        tax_rate=self.tax.rate,
                        amount_cents=applied.amount_cents,
                        precise_amount_cents=applied.precise_amount_cents,
                    )
                )
        for applied in totals.applied_taxes:
            self.invoice_taxes.append(
                InvoiceAppliedTax(
                    organization=self.organization,
                    invoice=invoice,
                    tax=self.tax,
                    tax_name=self.tax.name,
                    tax_code=self.tax.code,
                    tax_rate=self.tax.rate,
                    amount_cents=applied.amount_cents,
                    fees_amount_cents=applied.fees_amount_cents,
                )
            )
        billed = any(line.fee_type != "add_on" for _, line in lines)
        if subscription is not None and period is not None and billed:
            start, end = _instant(period[0]), _instant(period[1]) + timedelta(days=1, seconds=-1)
            self.periods.append(
                InvoiceSubscription(
                    organization=self.organization,
                    invoice=invoice,
                    subscription=subscription,
                    invoicing_reason="subscription_periodic",
                    from_datetime=start,
                    to_datetime=end,
                    charges_from_datetime=start,
                    charges_to_datetime=end,
                    timestamp=_instant(issuing),
                    recurring=True,
                )
            )

    def fee(
        self,
        customer: Customer,
        fee_type: str,
        amount_cents: int,
        *,
        units: Decimal = Decimal(1),
        name: str = "",
        unit_price: Decimal | None = None,
        **relations: object,
    ) -> tuple[Fee, calculation.FeeLine]:
        """A fee line; its unit price is the charge's price when given (a standard charge),
        else what a unit cost on average (a graduated one)."""
        if unit_price is None:
            unit_price = to_major(Decimal(amount_cents) / units, "EUR") if units else Decimal(0)
        fee = Fee(
            organization=self.organization,
            customer=customer,
            fee_type=fee_type,
            amount_cents=amount_cents,
            precise_amount_cents=Decimal(amount_cents),
            amount_currency="EUR",
            unit_amount_cents=round_cents(Decimal(amount_cents) / units) if units else 0,
            precise_unit_amount=unit_price,
            units=units,
            invoice_display_name=name,
            **relations,
        )
        line = calculation.FeeLine(
            key=str(len(self.fees) + id(fee)),
            fee_type=fee_type,
            amount_cents=amount_cents,
            taxes=(calculation.TaxRate(self.tax.code, self.tax.name, Decimal(self.tax.rate)),),
        )
        return fee, line

    def save(self) -> None:
        Invoice.objects.bulk_create(self.invoices, batch_size=500)
        Fee.objects.bulk_create([fee for fee, _ in self.fees], batch_size=500)
        FeeAppliedTax.objects.bulk_create(self.fee_taxes, batch_size=500)
        InvoiceAppliedTax.objects.bulk_create(self.invoice_taxes, batch_size=500)
        InvoiceSubscription.objects.bulk_create(self.periods, batch_size=500)
        Payment.objects.bulk_create([payment for payment, _ in self.payments], batch_size=500)
        # a payment's creation is when it was paid; fees and invoices below, by their day
        self._date_rows(Payment, [(payment.pk, paid_at) for payment, paid_at in self.payments])
        # creation instants are the billing days, not today (invoiced usage is read by them)
        self._date_rows(Fee, [(fee.pk, created) for fee, created in self.fees])
        self._date_rows(
            Invoice, [(invoice.pk, _instant(invoice.issuing_date)) for invoice in self.invoices]
        )

    @staticmethod
    def _date_rows(model: type, rows: list[tuple[object, datetime]]) -> None:
        """Sets the creation (and update) instant of rows written in bulk: one UPDATE an
        instant."""
        by_instant: dict[datetime, list] = {}
        for pk, instant in rows:
            by_instant.setdefault(instant, []).append(pk)
        for instant, ids in by_instant.items():
            model.objects.filter(pk__in=ids).update(created_at=instant, updated_at=instant)


def seed(*, organization: Organization, now: datetime) -> str:
    """Writes the history once (skipped when its first customer exists or the catalog is
    missing)."""
    alive = Customer.objects.for_organization(organization).alive()
    if alive.filter(external_id=CUSTOMERS[0].external_id).exists():
        return "history already there"
    plans = {
        p.code: p
        for p in Plan.objects.for_organization(organization).filter(
            code__in=("starter", "business", "enterprise_yearly"), parent__isnull=True
        )
    }
    if len(plans) < 3 or not Tax.objects.for_organization(organization).filter(code=VAT).exists():
        return "skipped: the demo catalog is missing"
    today = now.astimezone(UTC).date()
    this_month = today.replace(day=1)
    first_month = add_months(this_month, -(MONTHS - 1))
    Organization.objects.filter(pk=organization.pk, created_at__gt=_instant(first_month)).update(
        created_at=_instant(first_month)
    )
    writer = _Writer(organization, today)
    calls_charge = {
        code: Charge.objects.filter(plan=plan, billable_metric__code="api_calls").first()
        for code, plan in plans.items()
    }
    support = FixedCharge.objects.filter(plan=plans["business"]).first()
    onboarding = AddOn.objects.for_organization(organization).filter(code="onboarding").first()
    for index, spec in enumerate(CUSTOMERS):
        _seed_customer(
            writer, organization, spec, index, plans, calls_charge, support, onboarding, this_month
        )
    writer.save()
    figures_rebuild(organization=organization)
    return (
        f"{len(CUSTOMERS)} customers with {len(writer.invoices)} invoices "
        f"and {len(writer.fees)} fees over {MONTHS} months"
    )


def _subscription(organization, customer, plan, external_id, start, end, previous=None):
    return Subscription.objects.create(
        organization=organization,
        customer=customer,
        plan=plan,
        external_id=external_id,
        status="terminated" if end else "active",
        billing_time="calendar",
        subscription_at=_instant(start),
        started_at=_instant(start),
        terminated_at=_instant(end) if end else None,
        previous_subscription=previous,
    )


def _seed_customer(
    writer, organization, spec, index, plans, calls_charge, support, onboarding, this_month
) -> None:
    customer = customer_create(
        organization=organization,
        values={
            "external_id": spec.external_id,
            "name": spec.name,
            "legal_name": spec.name,
            "country": spec.country,
            "currency": "EUR",
            "customer_type": "company",
            "email": f"billing@{spec.external_id.removeprefix('demo_h_')}.example",
            "timezone": "UTC",
        },
        actor=SYSTEM,
    )
    start = add_months(this_month, -spec.start)
    end = add_months(this_month, -spec.end) if spec.end is not None else None
    upgrade = (
        add_months(this_month, -spec.upgrade_to_business)
        if spec.upgrade_to_business is not None
        else None
    )
    first_sub = _subscription(
        organization, customer, plans[spec.plan], f"{spec.external_id}_main", start, upgrade or end
    )
    second_sub = None
    if upgrade is not None:
        second_sub = _subscription(
            organization,
            customer,
            plans["business"],
            f"{spec.external_id}_business",
            upgrade,
            None,
            first_sub,
        )
        Subscription.objects.filter(pk=first_sub.pk).update(status="terminated")
    for months_ago in range(spec.start, -1, -1):
        issuing = add_months(this_month, -months_ago)
        if end is not None and issuing > end:
            break
        on_business = upgrade is not None and issuing >= upgrade
        sub = second_sub if on_business else first_sub
        plan_code = "business" if on_business else spec.plan
        growth = Decimal("1.12") ** (spec.start - months_ago)
        calls = int(spec.calls * growth)
        lines = []
        previous_month = add_months(issuing, -1)
        period = (issuing, add_months(issuing, 1) - timedelta(days=1))
        if plan_code == "starter":
            lines.append(
                writer.fee(
                    customer,
                    "subscription",
                    4900,
                    subscription=sub,
                    name="Starter",
                    properties=_props(*period),
                )
            )
            if issuing > start:  # usage of the month before, in arrears
                billable = max(0, calls - 10_000)
                lines.append(
                    writer.fee(
                        customer,
                        "charge",
                        billable // 5,
                        units=Decimal(calls),
                        subscription=sub,
                        charge=calls_charge["starter"],
                        name="API calls",
                    )
                )
        elif plan_code == "business":
            if issuing > (upgrade or start):  # in arrears: the month before
                period = (previous_month, issuing - timedelta(days=1))
                usage = calls // 10  # 0.001 EUR a call
                lines.append(
                    writer.fee(
                        customer,
                        "subscription",
                        29900,
                        subscription=sub,
                        name="Business",
                        properties=_props(*period),
                    )
                )
                lines.append(
                    writer.fee(
                        customer,
                        "charge",
                        usage,
                        units=Decimal(calls),
                        unit_price=Decimal("0.001"),
                        subscription=sub,
                        charge=calls_charge["business"],
                        name="API calls",
                    )
                )
                lines.append(
                    writer.fee(
                        customer,
                        "fixed_charge",
                        19900,
                        subscription=sub,
                        fixed_charge=support,
                        name="Premium support",
                    )
                )
                if 29900 + usage < 50000:
                    lines.append(
                        writer.fee(
                            customer,
                            "commitment",
                            50000 - 29900 - usage,
                            subscription=sub,
                            name="Minimum commitment",
                        )
                    )

        else:  # enterprise, yearly in advance, usage monthly in arrears
            if issuing == start:
                yearly = period = (issuing, add_months(issuing, 12) - timedelta(days=1))
                lines.append(
                    writer.fee(
                        customer,
                        "subscription",
                        1_200_000,
                        subscription=sub,
                        name="Enterprise (yearly)",
                        properties=_props(*yearly),
                    )
                )
            else:
                lines.append(
                    writer.fee(
                        customer,
                        "charge",
                        calls // 20,
                        units=Decimal(calls),
                        unit_price=Decimal("0.0005"),
                        subscription=sub,
                        charge=calls_charge["enterprise_yearly"],
                        name="API calls",
                    )
                )

        if issuing == start and onboarding is not None and index % 3 == 0:
            lines.append(
                writer.fee(
                    customer,
                    "add_on",
                    onboarding.amount_cents,
                    add_on=onboarding,
                    name="Onboarding workshop",
                )
            )
        if not lines:
            continue
        writer.invoice(
            customer,
            issuing,
            lines,
            invoice_type="subscription",
            pays=spec.pays,
            months_ago=months_ago,
            subscription=sub,
            period=period,
        )
        if spec.external_id == "demo_h_tyrell" and months_ago == 7 and onboarding is not None:
            # an onboarding billed by mistake, then voided
            mistake = [
                writer.fee(
                    customer,
                    "add_on",
                    onboarding.amount_cents,
                    add_on=onboarding,
                    name="Onboarding workshop",
                )
            ]
            writer.invoice(
                customer,
                issuing + timedelta(days=3),
                mistake,
                invoice_type="one_off",
                pays=spec.pays,
                months_ago=months_ago,
                voided=True,
            )


def _props(start: date, end: date) -> dict:
    return {
        "from_datetime": _instant(start).isoformat(),
        "to_datetime": (_instant(end) + timedelta(days=1, seconds=-1)).isoformat(),
    }
