"""The wallet, wallet transaction and triggered alert wire objects other apps send (webhooks),
rendered as the API answers them (`billing.wire_objects`)."""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Prefetch

from billing.activity import register_activity_object
from billing.wire_objects import register_wire_object
from wallets.api.alert_serializers import AlertSerializer
from wallets.api.serializers import WalletSerializer, WalletTransactionSerializer
from wallets.models import (
    RecurringTransactionRule,
    TriggeredAlert,
    Wallet,
    WalletAlert,
    WalletTransaction,
)
from wallets.services.alerts import triggered_alert_payload


def wallets_for_wire(ids: Sequence[str]) -> list[Wallet]:
    """Wallets of these ids, any status, with what WalletSerializer reads."""
    return list(
        Wallet.objects.filter(pk__in=ids)
        .select_related("customer__billing_entity")
        .prefetch_related(
            "targets__billable_metric",
            Prefetch(
                "recurring_transaction_rules",
                queryset=RecurringTransactionRule.objects.filter(
                    status=RecurringTransactionRule.Status.ACTIVE
                ),
                to_attr="active_rules",
            ),
        )
    )


def wallet_transactions_for_wire(ids: Sequence[str]) -> list[WalletTransaction]:
    """Wallet transactions of these ids."""
    return list(WalletTransaction.objects.filter(pk__in=ids).select_related("wallet"))


def triggered_alerts_for_wire(ids: Sequence[str]) -> list[TriggeredAlert]:
    """Triggered alerts of these ids."""
    return list(
        TriggeredAlert.objects.filter(pk__in=ids).select_related("alert", "wallet__customer")
    )


def register() -> None:
    """Declares the wallet, wallet transaction and triggered alert wire objects."""
    register_wire_object(
        "wallet", load=wallets_for_wire, render=lambda rows: WalletSerializer(rows, many=True).data
    )
    register_wire_object(
        "wallet_transaction",
        load=wallet_transactions_for_wire,
        render=lambda rows: WalletTransactionSerializer(rows, many=True).data,
    )
    register_wire_object(
        "triggered_alert",
        load=triggered_alerts_for_wire,
        render=lambda rows: [triggered_alert_payload(row) for row in rows],
    )

    # wallet alerts send no webhook of their own: rendered for the activity log only
    register_activity_object(
        "wallet_alert",
        load=lambda ids: WalletAlert.objects.filter(pk__in=ids).select_related("wallet__customer"),
        render=lambda rows: AlertSerializer(rows, many=True).data,
    )
