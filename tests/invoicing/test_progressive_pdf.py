"""The progressive billing invoice PDF: the usage so far, what earlier progressive invoices
billed, and why it was issued (the lifetime usage reached and the threshold passed), as Lago's
invoice shows them."""

from __future__ import annotations

import re
import subprocess

import pytest

from invoicing.pdf import render_invoice_pdf
from tests.invoicing.progressive_builders import progressive_invoices, usage, v92_billing
from tests.invoicing.test_pdf import SAMPLES, keep_sample, pdf_text

pytestmark = pytest.mark.django_db


def _text(invoice) -> str:
    content = render_invoice_pdf(invoice)
    keep_sample(f"progressive-{invoice.fees_amount_cents}", content)
    text, pages = pdf_text(content)
    assert pages == 1
    return re.sub(r"\s+", " ", text)


def test_progressive_pdf_explains_the_threshold_and_the_usage_window(api, organization):
    billing = v92_billing(api, organization, [(20_000, False)])
    usage(billing, "2022-12-06T10:00:00")
    [invoice] = progressive_invoices(billing)

    text = _text(invoice)

    assert (
        "This progressive billing is generated because your cumulative usage has reached "
        "€200.00, exceeding the €200.00 threshold." in text
    )
    assert "Fees from Dec 1, 2022 to Dec 6, 2022" in text
    assert "Service period" not in text
    assert "Dec 31, 2022" not in text  # the charge rows repeat no period end


def test_progressive_pdf_names_the_recurring_multiple_passed_and_the_usage_already_billed(
    api, organization
):
    billing = v92_billing(api, organization, [(20_000, False), (30_000, True)])
    usage(billing, "2022-12-06T10:00:00")  # 20,000: the one-time threshold
    usage(billing, "2022-12-16T10:00:00")  # 40,000: passes 30,000 of the recurring one
    _, second = progressive_invoices(billing)

    text = _text(second)

    assert "cumulative usage has reached €400.00, exceeding the €300.00 threshold." in text
    assert "Usage already billed \u2212 €200.00" in text


def test_progressive_pdf_renders_to_a_png(api, organization):
    billing = v92_billing(api, organization, [(20_000, False)])
    usage(billing, "2022-12-06T10:00:00")
    [invoice] = progressive_invoices(billing)
    content = render_invoice_pdf(invoice)
    keep_sample("progressive", content)

    subprocess.run(
        ["pdftoppm", "-png", "-r", "80", "-singlefile", str(SAMPLES / "progressive.pdf"),
         str(SAMPLES / "progressive")],
        check=True,
    )  # fmt: skip

    assert (SAMPLES / "progressive.png").stat().st_size > 10_000
