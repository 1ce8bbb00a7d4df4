"""`billing.signals.Hook`: after-commit notifications to the apps on the right."""

from __future__ import annotations

import logging

import pytest
from django.db import transaction

from billing.models import Organization
from billing.signals import hook


@hook
def on_thing_done(*, thing_id: int, by: str) -> None:
    """A thing was done (declared here for the tests)."""


@pytest.fixture
def calls():
    received = []

    def receiver(*, thing_id: int, by: str) -> None:
        received.append((thing_id, by))

    on_thing_done.connect(receiver)
    yield received
    on_thing_done.disconnect(receiver)


@pytest.mark.django_db(transaction=True)
def test_receivers_run_only_once_the_transaction_commits(calls):
    with transaction.atomic():
        Organization.objects.create(name="Acme")
        on_thing_done.fire_after_commit(thing_id=1, by="api")
        assert calls == []
    assert calls == [(1, "api")]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_runs_no_receiver(calls):
    def failing_change() -> None:
        with transaction.atomic():
            Organization.objects.create(name="Acme")
            on_thing_done.fire_after_commit(thing_id=1, by="api")
            raise RuntimeError("the change fails")

    with pytest.raises(RuntimeError):
        failing_change()
    assert calls == []
    assert not Organization.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_failing_receiver_is_logged_and_the_next_one_still_runs(caplog):
    received = []

    def broken(*, thing_id: int, by: str) -> None:
        raise RuntimeError("invoicing is down")

    def recorder(*, thing_id: int, by: str) -> None:
        received.append((thing_id, by))

    on_thing_done.connect(broken)
    on_thing_done.connect(recorder)
    try:
        with caplog.at_level(logging.ERROR, logger="billing.signals"), transaction.atomic():
            Organization.objects.create(name="Acme")
            on_thing_done.fire_after_commit(thing_id=2, by="admin")
    finally:
        on_thing_done.disconnect(broken)
        on_thing_done.disconnect(recorder)
    assert received == [(2, "admin")]
    [record] = caplog.records
    assert "<locals>.broken of tests.billing.test_signals.on_thing_done" in record.getMessage()
    assert record.exc_info[1].args == ("invoicing is down",)
    assert Organization.objects.filter(name="Acme").exists()


def test_firing_with_an_undeclared_keyword_fails_at_the_call_site(calls):
    with pytest.raises(TypeError):
        on_thing_done.fire_after_commit(thing_id=1, by="api", extra=True)
    with pytest.raises(TypeError):
        on_thing_done.fire_after_commit(thing_id=1)
    assert calls == []


def test_a_receiver_missing_a_declared_keyword_is_refused():
    def half(*, thing_id: int) -> None:
        return None

    with pytest.raises(TypeError, match="does not accept by"):
        on_thing_done.connect(half)
    assert half not in on_thing_done.receivers


def test_connecting_twice_keeps_one_receiver(calls):
    [receiver] = on_thing_done.receivers
    on_thing_done.connect(receiver)
    assert on_thing_done.receivers == (receiver,)


def test_the_prototype_documents_the_hook():
    assert on_thing_done.name == "tests.billing.test_signals.on_thing_done"
    assert str(on_thing_done.signature) == "(*, thing_id: 'int', by: 'str') -> 'None'"
    assert on_thing_done.__doc__ == "A thing was done (declared here for the tests)."
