"""Checks shared by the analytics figure tests."""

from __future__ import annotations

from django.db import transaction

from billing.models import Organization
from invoicing.services.analytics_figures import figures_rebuild, figures_summed


def recomputed(organization: Organization) -> dict:
    """The organization's figures summed per key after a rebuild from its invoices (rolled
    back): what `figures_summed` must equal whatever wrote the figures."""
    with transaction.atomic():
        figures_rebuild(organization=organization)
        rebuilt = figures_summed(organization)
        transaction.set_rollback(True)
    return rebuilt
