"""demo [--wait]: point the local devnet chains at var/devnet.json, create the demo user and wallets, sync."""

from __future__ import annotations

import json
import os
import secrets
import time
from datetime import timedelta
from pathlib import Path
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from chains.registry import FAMILIES, parse_address
from portfolio.models import Asset, Chain, Portfolio, ProtocolDeployment, RpcEndpoint, Wallet, WalletChain
from portfolio.sync.run import do_request_sync

DEMO_USERNAME = "demo"
DEMO_PORTFOLIO = "Demo"
WAIT_S = 120
# The Bitcoin and Solana devnets have no price oracle: the demo sets these as an admin would (source
# "manual", shown as such on every page). The EVM scenario's tokens are priced by its on-chain feeds.
DEMO_MANUAL_PRICES = {
    ("bitcoin-regtest", "BTC"): Decimal("60000"),
    ("solana-local", "SOL"): Decimal("150"),
    ("solana-local", "DUSD"): Decimal("1.00"),
    ("solana-local", "DNINE"): Decimal("0.25"),
    ("solana-local", "D22"): Decimal("3.20"),
}
DEMO_YESTERDAY = Decimal("0.96")  # the manual prices of 25 hours before: each asset 1/0.96 - 1 = +4.17% on 24h


def load_scenario_assets(chain: Chain, scenario: dict[str, Any]) -> None:
    """A devnet scenario's reference data on ``chain``, as an admin would enter it: the native asset and
    the listed tokens with their oracles, the DeFi protocols' contracts, and the tokens of the positions
    (priced by the scenario's feeds). Used by the demo and by the tests' chain seeding. Safe to re-run."""
    c = scenario["chain"]
    oracles = scenario.get("oracles") or {}
    Asset.objects.update_or_create(
        chain=chain, address="",
        defaults=dict(kind=Asset.NATIVE, standard="native", symbol=c["native_symbol"], name=c.get("native_name", ""),
                      decimals=c["native_decimals"], listed=True, oracle_address=oracles.get("native") or ""),
    )
    for a in scenario.get("assets", []):
        if a.get("listed"):
            Asset.objects.update_or_create(
                chain=chain, address=a["address"],
                defaults=dict(kind=a["kind"], standard=a.get("standard") or "", symbol=a["symbol"], name=a.get("name", ""),
                              decimals=a.get("decimals", 0), listed=True, oracle_address=a.get("oracle") or ""),
            )
    defi = scenario.get("defi") or {}
    for protocol, contracts in (defi.get("protocols") or {}).items():
        ProtocolDeployment.objects.update_or_create(chain=chain, protocol=protocol, defaults={"contracts": contracts, "enabled": True})
    for a in defi.get("assets", []):
        Asset.objects.update_or_create(chain=chain, address=a["address"], defaults=dict(
            kind=Asset.FUNGIBLE, standard="erc20", symbol=a["symbol"], name=a["name"], decimals=a["decimals"],
            listed=True, oracle_address=a["oracle"]))


class Command(BaseCommand):
    help = (
        "Set up the demo on the local chains started by devnet/run.py: enable the devnet chains with the URLs "
        "from DEVNET_STATE_FILE (var/devnet.json), disable the mainnets (no internet in the demo), import the "
        "scenario tokens, create the user 'demo' with the scenario wallets in a 'Demo' portfolio, and request "
        "a first sync. Safe to re-run."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--wait", action="store_true", help=f"wait up to {WAIT_S} s for the devnet state file")

    def handle(self, *args, wait: bool = False, **options) -> None:
        state = self._read_state(Path(settings.DEVNET_STATE_FILE), wait)
        for family, error in (state.get("errors") or {}).items():
            self.stderr.write(f"devnet {family} failed to start: {error}")
        scenarios = {f: state[f] for f in FAMILIES if isinstance(state.get(f), dict)}
        if not scenarios:
            raise CommandError(f"{settings.DEVNET_STATE_FILE} holds no chain: did devnet/run.py fail?")

        with transaction.atomic():
            disabled = list(Chain.objects.filter(network="mainnet", enabled=True).values_list("name", flat=True))
            Chain.objects.filter(network="mainnet").update(enabled=False)
            chains = {family: self._setup_chain(s) for family, s in scenarios.items()}
        if disabled:
            self.stdout.write(f"Note: disabled the mainnet chains ({', '.join(disabled)}): the demo runs without internet. "
                              "Enable them again in the admin for real use.")

        self._demo_prices()
        user, password = self._demo_user()
        portfolio, _ = Portfolio.objects.get_or_create(owner=user, name=DEMO_PORTFOLIO)
        added = sum(self._add_wallets(user, portfolio, s) for s in scenarios.values())
        self._primary_names(user)

        run = do_request_sync(user, portfolio=portfolio)
        port = os.environ.get("PORT", "8000")
        self.stdout.write(self.style.SUCCESS(
            f"Demo ready on {', '.join(c.name for c in chains.values())}: {added} wallet(s) added, "
            f"sync #{run.pk} requested (a worker fans it out per wallet and chain)."
        ))
        self.stdout.write(f"Open http://127.0.0.1:{port}/ and log in as '{DEMO_USERNAME}' with password '{password}'.")

    # ------------------------------------------------------------------ steps

    def _read_state(self, path: Path, wait: bool) -> dict[str, Any]:
        deadline = time.monotonic() + (WAIT_S if wait else 0)
        announced = False
        while True:
            if path.exists():
                try:
                    return json.loads(path.read_text())
                except (json.JSONDecodeError, OSError):
                    pass  # being written: try again
            if time.monotonic() >= deadline:
                hint = " (start the chains with `python -m devnet.run`, or `make run`)"
                raise CommandError(f"no devnet state file at {path}{hint}")
            if not announced:
                self.stdout.write(f"Waiting for the local chains ({path})...")
                announced = True
            time.sleep(0.5)

    def _setup_chain(self, scenario: dict[str, Any]) -> Chain:
        """Enable the devnet chain with the scenario's URL as its only endpoint and its listed assets."""
        c = scenario["chain"]
        chain = Chain.objects.filter(slug=c["slug"]).first()
        if chain is None:
            chain = Chain(slug=c["slug"], name=c.get("name", c["slug"]), family=scenario["family"])
        chain.chain_id = c.get("chain_id")
        chain.network = c["network"]
        chain.native_symbol = c["native_symbol"]
        chain.native_name = c.get("native_name", "")
        chain.native_decimals = c["native_decimals"]
        chain.genesis_hash = c.get("genesis_hash") or ""
        chain.enabled = True
        if scenario["family"] == "evm":
            chain.log_scan_start = 0
            chain.ens_registry = (scenario.get("ens") or {}).get("registry") or ""
        chain.save()
        RpcEndpoint.objects.filter(chain=chain).exclude(url=scenario["url"]).delete()
        RpcEndpoint.objects.update_or_create(chain=chain, url=scenario["url"], defaults={"priority": 0, "enabled": True})
        load_scenario_assets(chain, scenario)
        # The devnets start from scratch on every `make run`: scan positions of the last run are void.
        WalletChain.objects.filter(chain=chain).update(cursors={}, height=None)
        from portfolio.services.wallets import ensure_wallet_chains

        ensure_wallet_chains(chain)
        return chain

    def _primary_names(self, user) -> None:
        """The demo wallets' ENS names (the devnet registers demo.eth and bob.eth), shown at once."""
        from chains.base import ChainError
        from portfolio.services.ens import do_refresh_primary_names

        try:
            do_refresh_primary_names(Wallet.objects.filter(owner=user, family="evm"))
        except ChainError as exc:
            self.stderr.write(f"ENS names not read: {exc}")

    def _demo_prices(self) -> None:
        """Manual prices for the devnet assets no oracle prices, unless an admin already priced them."""
        from portfolio.models import PricePoint
        from portfolio.services.prices import set_manual_price

        now = timezone.now()
        for (slug, symbol), price in DEMO_MANUAL_PRICES.items():
            for asset in Asset.objects.filter(chain__slug=slug, symbol=symbol):
                if not PricePoint.objects.filter(asset=asset, source="manual").exists():
                    # And the day before's, so the demo's 24h change has a price to compare with.
                    set_manual_price(asset, price * DEMO_YESTERDAY, at=now - timedelta(hours=25))
                    set_manual_price(asset, price, at=now)

    def _demo_user(self) -> tuple[Any, str]:
        """The demo user; its password is kept in VAR_DIR/demo-password so a re-run can print it."""
        User = get_user_model()
        secret_file = Path(settings.VAR_DIR) / "demo-password"
        user = User.objects.filter(username=DEMO_USERNAME).first()
        if user is not None and secret_file.exists():
            return user, secret_file.read_text().strip()
        password = f"demo-{secrets.token_urlsafe(9)}"
        if user is None:
            user = User.objects.create_user(DEMO_USERNAME, f"{DEMO_USERNAME}@localhost", password)
        else:
            user.set_password(password)
            user.save()
        secret_file.write_text(password + "\n")
        secret_file.chmod(0o600)
        return user, password

    def _add_wallets(self, user, portfolio: Portfolio, scenario: dict[str, Any]) -> int:
        from portfolio.services.wallets import do_add_wallet

        added = 0
        family = scenario["family"]
        for w in scenario["wallets"] + (scenario.get("defi") or {}).get("wallets", []):
            parsed = parse_address(family, w["address"])
            existing = Wallet.objects.filter(owner=user, family=family, address=parsed.address).first()
            if existing is not None:
                portfolio.wallets.add(existing)
                continue
            script_type = w.get("script_type") if parsed.kind == "extended_key" else None
            try:
                do_add_wallet(user, family, w["address"], label=w.get("label", "")[:80], portfolios=[portfolio],
                              script_type=script_type, gap_limit=w.get("gap_limit") or 20)
                added += 1
            except ValidationError as exc:
                self.stderr.write(f"skipped demo wallet {w.get('label') or parsed.address}: {' '.join(exc.messages)}")
        return added
