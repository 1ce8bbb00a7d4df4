"""Customer 360 and subscription admin."""

from customers.admin import customers, subscriptions  # noqa: F401
