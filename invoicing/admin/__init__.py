"""Invoicing admin modules (each registers its models)."""

from importlib import import_module
from importlib.util import find_spec

for _module in ("invoicing.admin.invoices",):
    if find_spec(_module):
        import_module(_module)
