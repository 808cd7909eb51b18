"""Health-factor alerts: after each sync, lending positions below their owner's threshold open an
alert (and log an event); positions that recovered or closed clear theirs."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Iterable

from django.db import IntegrityError, transaction
from django.utils import timezone

from portfolio.models import HealthAlert, Position, Profile, WalletChain

log = logging.getLogger(__name__)
DEFAULT_THRESHOLD = Decimal("1.20")


def do_check_health(wallet_chain_ids: Iterable[int]) -> tuple[int, int]:
    """Open and clear the alerts of these WalletChains' positions. Returns (opened, cleared)."""
    ids = list(wallet_chain_ids)
    owners = dict(WalletChain.objects.filter(pk__in=ids).values_list("pk", "wallet__owner_id"))
    thresholds = dict(Profile.objects.filter(user_id__in=set(owners.values())).values_list("user_id", "health_alert_below"))
    positions = {(p.wallet_chain_id, p.protocol, p.ref): p for p in
                 Position.objects.filter(wallet_chain_id__in=ids, health_factor__isnull=False)}
    open_alerts = {(a.wallet_chain_id, a.protocol, a.ref): a for a in
                   HealthAlert.objects.filter(wallet_chain_id__in=ids, cleared_at__isnull=True)}
    now, opened, cleared = timezone.now(), 0, 0
    for key, p in positions.items():
        owner = owners[p.wallet_chain_id]
        threshold = thresholds.get(owner, DEFAULT_THRESHOLD)
        alert = open_alerts.pop(key, None)
        if p.health_factor < threshold and alert is None:
            opened += _open(owner, p, threshold)
        elif p.health_factor < threshold:
            HealthAlert.objects.filter(pk=alert.pk).update(health_factor=p.health_factor)
        elif alert is not None:
            cleared += _clear(alert, p.health_factor, now)
    for alert in open_alerts.values():  # the position is gone (repaid, closed): nothing left at risk
        cleared += _clear(alert, None, now)
    return opened, cleared


def _open(owner_id: int, p: Position, threshold: Decimal) -> int:
    try:
        with transaction.atomic():
            HealthAlert.objects.create(owner_id=owner_id, wallet_chain_id=p.wallet_chain_id, protocol=p.protocol, ref=p.ref,
                                       label=p.label, health_factor=p.health_factor, threshold=threshold)
    except IntegrityError:  # another worker opened it a moment ago
        return 0
    log.warning("health factor below threshold", extra={"event": "health_alert_opened", "owner_id": owner_id,
                "protocol": p.protocol, "position": p.ref, "health_factor": str(p.health_factor), "threshold": str(threshold)})
    return 1


def _clear(alert: HealthAlert, health_factor: Decimal | None, now) -> int:
    HealthAlert.objects.filter(pk=alert.pk).update(cleared_at=now)
    log.info("health factor recovered", extra={"event": "health_alert_cleared", "owner_id": alert.owner_id,
             "protocol": alert.protocol, "position": alert.ref, "health_factor": str(health_factor) if health_factor else "closed"})
    return 1


def open_alerts(owner, wallet_ids: Iterable[int], *, all_wallets: bool = False) -> list[HealthAlert]:
    """The owner's open alerts among ``wallet_ids`` (all of them: no id list), worst first (for the
    dashboard's banner)."""
    alerts = HealthAlert.objects.filter(owner=owner, cleared_at__isnull=True)
    if not all_wallets:
        alerts = alerts.filter(wallet_chain__wallet_id__in=list(wallet_ids))
    return list(alerts.select_related("wallet_chain__wallet", "wallet_chain__chain").order_by("health_factor"))
