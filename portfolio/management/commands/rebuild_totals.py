"""rebuild_totals [username ...]: recompute the per-asset totals of each scope from the stored holdings."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from portfolio import totals


class Command(BaseCommand):
    help = (
        "Recompute every scope's per-asset totals (All wallets and each portfolio) from the stored holdings: "
        "after holdings were loaded or edited around the sync (a restore, raw SQL). Also makes the users' next "
        "syncs diff every stored row again (their stored fingerprints are forgotten). Safe to re-run."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("usernames", nargs="*", help="Only these users (default: everyone with a wallet).")

    def handle(self, *args, usernames: list[str], **options) -> None:
        users = get_user_model().objects.filter(wallets__isnull=False).distinct()
        if usernames:
            users = users.filter(username__in=usernames)
        for user_id in users.order_by("pk").values_list("pk", flat=True):
            with transaction.atomic():
                totals.rebuild(user_id)
        self.stdout.write(f"rebuilt the per-asset totals of {users.count()} users")
