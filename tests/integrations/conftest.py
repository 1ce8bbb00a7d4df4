"""Webhook tests: private (loopback) receivers allowed unless a test turns it off."""

from __future__ import annotations

import pytest

from tests.integrations.receiver import running_receiver


@pytest.fixture(autouse=True)
def _allow_private_urls(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True


@pytest.fixture
def receiver():
    with running_receiver() as running:
        yield running


@pytest.fixture
def other_receiver():
    with running_receiver() as running:
        yield running
