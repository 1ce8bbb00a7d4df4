"""The customers' vocabularies shared with the pure invoice math (`invoicing.calculation`).

No ORM here: Django's `TextChoices` are plain `str` enums with a label, reused by the models as
field `choices`.
"""

from __future__ import annotations

from django.db.models.enums import TextChoices
from django.utils.translation import gettext_lazy as _


class ZeroAmountInvoice(TextChoices):
    """Customer `finalize_zero_amount_invoice`: follow the billing entity, skip or finalize
    invoices whose total is zero (spec §2.4, §12.6)."""

    INHERIT = "inherit", _("Inherit")
    SKIP = "skip", _("Skip")
    FINALIZE = "finalize", _("Finalize")
