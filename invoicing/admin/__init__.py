"""Invoicing admin modules (each registers its models) and the finance overview page."""

from django.contrib import admin

from invoicing.admin import credit_notes, fees, invoices, payments  # noqa: F401
from invoicing.admin.overview import register_overview

register_overview(admin.site)
