"""Payment provider connections admin."""

from integrations.admin import payment_providers  # noqa: F401
