"""Integrations admin: payment provider connections, webhook endpoints and their delivery log."""

from integrations.admin import payment_providers, webhooks  # noqa: F401
