"""Adding, editing and removing watch-only wallets and portfolios, and keeping their WalletChains in step."""

from __future__ import annotations

import logging
from typing import Iterable

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from chains.base import ChainError, InvalidAddress, ParsedAddress, SecretRefused, UnsupportedChain
from chains.evm.address import looks_like_ens_name
from chains.registry import parse_address
from chains.secrets import WATCH_ONLY_MESSAGE, secret_kind
from portfolio import freshness, jobs
from portfolio.models import Chain, Portfolio, Wallet, WalletChain
from portfolio.services.ens import resolve_name

log = logging.getLogger(__name__)

BITCOIN_SCRIPT_TYPES = ("p2pkh", "p2sh-p2wpkh", "p2wpkh", "p2tr")
MAX_GAP_LIMIT = 1000
DUPLICATE_WALLET_MESSAGE = "You already track this address."
DUPLICATE_PORTFOLIO_MESSAGE = "You already have a portfolio with this name."


def parse_watch_only(family: str, text: str) -> ParsedAddress:
    """Validate ``text`` as a watch-only address / extended public key of ``family``.

    Raises ``ValidationError`` whose message never contains ``text``: code ``secret`` for anything that
    looks like a private key or seed phrase, ``invalid`` for anything else that is not an address."""
    try:
        return parse_address(family, text or "")
    except SecretRefused:
        raise ValidationError(WATCH_ONLY_MESSAGE, code="secret") from None
    except UnsupportedChain:
        raise ValidationError("Unsupported chain family.", code="invalid") from None
    except InvalidAddress as exc:
        raise ValidationError(_sentence(exc.detail), code="invalid") from None
    except ChainError as exc:
        raise ValidationError(_sentence(exc.detail), code="invalid") from None


def refuse_secret_text(text: str) -> None:
    """Raise ``ValidationError(code="secret")`` if free text (a label, a name) holds a secret."""
    if text and secret_kind(text):
        raise ValidationError(WATCH_ONLY_MESSAGE, code="secret")


def chains_for(family: str, networks: Iterable[str] = ()) -> list[Chain]:
    """Enabled chains of ``family`` whose network is one of ``networks`` (empty: every network)."""
    qs = Chain.objects.filter(family=family, enabled=True)
    networks = tuple(networks)
    if networks:
        qs = qs.filter(network__in=networks)
    return list(qs.order_by("sort_order", "name"))


def do_add_wallet(
    owner,
    family: str,
    text: str,
    *,
    label: str = "",
    portfolios: Iterable[Portfolio] = (),
    script_type: str | None = None,
    gap_limit: int = 20,
) -> Wallet:
    """Start tracking a watch-only address or extended public key for ``owner``.

    Creates one WalletChain per enabled chain of ``family`` whose network matches the address (an EVM
    address: every enabled EVM chain; a Bitcoin address: mainnet or regtest as its prefix says).
    Raises ``ValidationError`` (safe message, never the input): code ``secret`` (a private key or seed
    phrase), ``invalid`` (not an address, bad script type or gap limit, a portfolio of someone else),
    ``no_chain`` (no enabled chain for its network), ``duplicate`` (the owner already tracks it) or ``limit``
    (``portfolio.limits.LimitReached``: the owner has as many wallets as they may).
    An EVM ``text`` that is an ENS name is resolved now (``resolve_name``, which may also raise
    ``ens_unavailable``): the address is stored, the name kept as ``ens_name``."""
    ens_name = ""
    if family == "evm" and looks_like_ens_name(text):
        text, ens_name = resolve_name(text)
    parsed = parse_watch_only(family, text)
    refuse_secret_text(label)
    portfolios = list(portfolios)
    if any(p.owner_id != owner.pk for p in portfolios):
        raise ValidationError("Unknown portfolio.", code="invalid")
    if not 1 <= int(gap_limit) <= MAX_GAP_LIMIT:
        raise ValidationError(f"The gap limit must be between 1 and {MAX_GAP_LIMIT}.", code="invalid")
    script = _script_type(family, parsed, script_type)
    chains = chains_for(family, parsed.networks)
    if not chains:
        where = " or ".join(parsed.networks) if parsed.networks else "any network"
        raise ValidationError(
            f"No enabled {family} chain for {where}: an administrator has to enable one first.", code="no_chain"
        )
    if Wallet.objects.filter(owner=owner, family=family, address=parsed.address).exists():
        raise ValidationError(DUPLICATE_WALLET_MESSAGE, code="duplicate")
    try:
        with transaction.atomic():
            _lock_owner_and_check(owner, "check_wallet_limit")
            wallet = Wallet.objects.create(
                owner=owner,
                family=family,
                address=parsed.address,
                kind=parsed.kind,
                script_type=script,
                gap_limit=int(gap_limit),
                label=label.strip(),
                ens_name=ens_name,
            )
            WalletChain.objects.bulk_create([WalletChain(wallet=wallet, chain=c) for c in chains])
            freshness.changed(owner_ids=[owner.pk])
            if portfolios:
                wallet.portfolios.set(portfolios)
                _rebuild_series_after_commit(owner.pk)
    except IntegrityError:  # a concurrent add of the same address
        raise ValidationError(DUPLICATE_WALLET_MESSAGE, code="duplicate") from None
    log.info("wallet added", extra={"wallet_id": wallet.pk, "family": family, "chains": len(chains)})
    return wallet


def do_update_wallet(
    wallet: Wallet, *, label: str | None = None, portfolios: Iterable[Portfolio] | None = None, gap_limit: int | None = None
) -> Wallet:
    """Change what may change after adding: label, portfolios, gap limit. Raises ``ValidationError``."""
    with transaction.atomic():
        if label is not None:
            refuse_secret_text(label)
            wallet.label = label.strip()
        if gap_limit is not None:
            if not 1 <= int(gap_limit) <= MAX_GAP_LIMIT:
                raise ValidationError(f"The gap limit must be between 1 and {MAX_GAP_LIMIT}.", code="invalid")
            wallet.gap_limit = int(gap_limit)
        wallet.save()
        if portfolios is not None:
            portfolios = list(portfolios)
            if any(p.owner_id != wallet.owner_id for p in portfolios):
                raise ValidationError("Unknown portfolio.", code="invalid")
            wallet.portfolios.set(portfolios)
            _rebuild_series_after_commit(wallet.owner_id)
    return wallet


def do_delete_wallet(wallet: Wallet) -> None:
    """Stop tracking a wallet: its WalletChains, holdings and history go with it."""
    wallet_id = wallet.pk
    with transaction.atomic():
        wallet.delete()
        freshness.changed(owner_ids=[wallet.owner_id])
    log.info("wallet deleted", extra={"wallet_id": wallet_id})


def ensure_wallet_chains(chain: Chain) -> int:
    """Give every existing wallet of ``chain``'s family that matches its network a WalletChain on it.

    Called when an administrator adds or enables a chain. Returns how many were created (0 when the
    chain is disabled)."""
    if not chain.enabled:
        return 0
    have = set(WalletChain.objects.filter(chain=chain).values_list("wallet_id", flat=True))
    missing = []
    for wallet in Wallet.objects.filter(family=chain.family).exclude(pk__in=have).only("id", "owner_id", "family", "address"):
        try:
            networks = parse_address(wallet.family, wallet.address).networks
        except Exception:  # a stored wallet the parser no longer accepts: leave it alone
            log.warning("stored wallet no longer parses", extra={"wallet_id": wallet.pk})
            continue
        if not networks or chain.network in networks:
            missing.append(WalletChain(wallet=wallet, chain=chain))
    WalletChain.objects.bulk_create(missing, ignore_conflicts=True)
    freshness.changed(owner_ids=[wc.wallet.owner_id for wc in missing])
    if missing:
        log.info("wallet chains added", extra={"chain": chain.slug, "count": len(missing)})
    return len(missing)


def do_create_portfolio(owner, name: str, wallets: Iterable[Wallet] = ()) -> Portfolio:
    """Create a named group of ``owner``'s wallets. Raises ``ValidationError`` (duplicate name, foreign wallet,
    ``limit`` when the owner has as many portfolios as they may)."""
    name = (name or "").strip()
    _check_portfolio(owner, name, wallets)
    try:
        with transaction.atomic():
            _lock_owner_and_check(owner, "check_portfolio_limit")
            portfolio = Portfolio.objects.create(owner=owner, name=name)
            portfolio.wallets.set(list(wallets))
            _rebuild_series_after_commit(owner.pk)
    except IntegrityError:
        raise ValidationError(DUPLICATE_PORTFOLIO_MESSAGE, code="duplicate") from None
    return portfolio


def do_update_portfolio(portfolio: Portfolio, *, name: str | None = None, wallets: Iterable[Wallet] | None = None) -> Portfolio:
    """Rename a portfolio and/or replace its wallets. Raises ``ValidationError``."""
    new_name = portfolio.name if name is None else name.strip()
    _check_portfolio(portfolio.owner, new_name, wallets or (), exclude=portfolio.pk)
    try:
        with transaction.atomic():
            portfolio.name = new_name
            portfolio.save()
            if wallets is not None:
                portfolio.wallets.set(list(wallets))
                _rebuild_series_after_commit(portfolio.owner_id)
    except IntegrityError:
        raise ValidationError(DUPLICATE_PORTFOLIO_MESSAGE, code="duplicate") from None
    return portfolio


def do_delete_portfolio(portfolio: Portfolio) -> None:
    """Delete a portfolio (its wallets stay tracked)."""
    portfolio.delete()


# --------------------------------------------------------------------------- helpers


def _rebuild_series_after_commit(owner_id: int) -> None:
    """A portfolio's wallet set changed: have a worker build its value series from its wallets'
    history, so its dashboard reads one short series. Until then the dashboard sums wallet totals
    (correct, just slower), so a broker that is down only logs a warning."""

    def enqueue() -> None:
        try:
            jobs.enqueue(jobs.MATERIALISE_SCOPES, [owner_id])
        except Exception:  # noqa: BLE001 - any broker failure; the page still works without it
            log.warning("could not enqueue the portfolio series rebuild", extra={"owner_id": owner_id})

    transaction.on_commit(enqueue)


def _lock_owner_and_check(owner, check: str) -> None:
    """Inside the caller's transaction: lock the owner's Profile row so two concurrent adds of one user are
    counted one after the other, then run a ``portfolio.limits`` count check."""
    from portfolio import limits
    from portfolio.models import Profile

    list(Profile.objects.select_for_update().filter(user_id=owner.pk).values_list("pk", flat=True))
    getattr(limits, check)(owner)


def _check_portfolio(owner, name: str, wallets: Iterable[Wallet], exclude: int | None = None) -> None:
    if not name:
        raise ValidationError("A portfolio needs a name.", code="required")
    refuse_secret_text(name)
    if any(w.owner_id != owner.pk for w in wallets):
        raise ValidationError("Unknown wallet.", code="invalid")
    clash = Portfolio.objects.filter(owner=owner, name=name)
    if exclude:
        clash = clash.exclude(pk=exclude)
    if clash.exists():
        raise ValidationError(DUPLICATE_PORTFOLIO_MESSAGE, code="duplicate")


def _script_type(family: str, parsed: ParsedAddress, chosen: str | None) -> str:
    """Bitcoin: an extended key is scanned as the chosen script type (default: what its prefix implies);
    a single address has the type its encoding says. Other families have none."""
    if family != "bitcoin":
        return ""
    if parsed.kind == Wallet.EXTENDED_KEY and chosen:
        if chosen not in BITCOIN_SCRIPT_TYPES:
            raise ValidationError(f"Unknown script type (use one of {', '.join(BITCOIN_SCRIPT_TYPES)}).", code="invalid")
        return chosen
    return parsed.script_type or ""


def _sentence(message: str) -> str:
    message = (message or "invalid address").strip()
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")
