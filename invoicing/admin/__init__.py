"""Invoicing admin modules (each registers its models)."""

from invoicing.admin import invoices, payments  # noqa: F401
