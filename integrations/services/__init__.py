"""Writes of the integrations app: provider connections, provider customers, incoming events."""
