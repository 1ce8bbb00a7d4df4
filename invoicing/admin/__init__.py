"""Invoicing admin modules (each registers its models)."""

from invoicing.admin import credit_notes, invoices, payments  # noqa: F401
