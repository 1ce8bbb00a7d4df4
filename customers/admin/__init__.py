"""Customer 360 and subscription admin."""

from importlib import import_module
from importlib.util import find_spec

for _module in (
    "customers.admin.customers",
    "customers.admin.subscriptions",
    "customers.admin.events",
):
    if find_spec(_module):
        import_module(_module)
