"""import_tokenlist <chain-slug> <file.json>: upsert a Uniswap-format token list's tokens as listed ERC-20 assets."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from chains.base import InvalidAddress
from chains.evm.address import parse_address
from portfolio.models import Asset, Chain


class Command(BaseCommand):
    help = (
        "Import a token list (https://tokenlists.org JSON: tokens[] with chainId, address, name, symbol, decimals, "
        "logoURI) for one EVM chain. Only tokens whose chainId is the chain's are imported; they become listed "
        "ERC-20 assets (balances read even before a transfer is seen). Safe to re-run."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("chain", help="Chain slug, e.g. ethereum")
        parser.add_argument("path", help="Path of the token list JSON file ('-' for standard input)")

    def handle(self, *args, chain: str, path: str, **options) -> str:
        try:
            target = Chain.objects.get(slug=chain)
        except Chain.DoesNotExist:
            raise CommandError(f"unknown chain {chain!r} (see the chains in the admin)") from None
        if target.family != "evm" or target.chain_id is None:
            raise CommandError(f"{chain} is not an EVM chain with a chain id: token lists are for EVM chains")
        tokens = _read_tokens(path)
        counts = import_tokens(target, tokens)
        skipped = {k.removeprefix("skipped: "): v for k, v in counts.items() if k.startswith("skipped: ")}
        summary = (
            f"{target.slug}: {counts['created']} created, {counts['updated']} updated, {counts['unchanged']} unchanged, "
            f"{sum(skipped.values())} skipped"
        )
        if skipped:
            summary += " (" + ", ".join(f"{reason}: {n}" for reason, n in sorted(skipped.items())) + ")"
        self.stdout.write(summary)
        return ""


def _read_tokens(path: str) -> list:
    import sys

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CommandError(f"{path} is not JSON: {exc}") from None
    tokens = data.get("tokens") if isinstance(data, dict) else None
    if not isinstance(tokens, list):
        raise CommandError(f"{path} is not a token list (no tokens[] array)")
    return tokens


def import_tokens(chain: Chain, tokens: list) -> Counter:
    """Upsert ``tokens`` (token-list entries) of ``chain`` as listed ERC-20 assets. Returns counts:
    created, updated, unchanged, and ``skipped: <reason>``. Never touches the spam flag an admin set."""
    counts: Counter = Counter(created=0, updated=0, unchanged=0)
    with transaction.atomic():
        existing = {a.address: a for a in Asset.objects.filter(chain=chain).exclude(address="")}
        seen: set[str] = set()
        for token in tokens:
            fields, reason = _token_fields(chain, token)
            if reason:
                counts[f"skipped: {reason}"] += 1
                continue
            address = fields.pop("address")
            if address in seen:
                counts["skipped: duplicate in list"] += 1
                continue
            seen.add(address)
            asset = existing.get(address)
            if asset is None:
                Asset.objects.create(chain=chain, address=address, **fields)
                counts["created"] += 1
                continue
            if asset.kind == Asset.NFT_COLLECTION:
                counts["skipped: known as an NFT collection"] += 1
                continue
            changed = [k for k, v in fields.items() if getattr(asset, k) != v and not (k == "logo_url" and not v)]
            for k in changed:
                setattr(asset, k, fields[k])
            if changed:
                asset.save(update_fields=changed)
                counts["updated"] += 1
            else:
                counts["unchanged"] += 1
    return counts


def _token_fields(chain: Chain, token) -> tuple[dict, str]:
    if not isinstance(token, dict):
        return {}, "not an object"
    if token.get("chainId") != chain.chain_id:
        return {}, "other chain"
    try:
        address = parse_address(str(token.get("address", ""))).address
    except InvalidAddress:
        return {}, "invalid address"
    decimals = token.get("decimals")
    if not isinstance(decimals, int) or isinstance(decimals, bool) or not 0 <= decimals <= 255:
        return {}, "invalid decimals"
    symbol = str(token.get("symbol") or "").strip()
    if not symbol or len(symbol) > 64:
        return {}, "invalid symbol"
    return {
        "address": address,
        "kind": Asset.FUNGIBLE,
        "standard": "erc20",
        "symbol": symbol,
        "name": str(token.get("name") or "").strip()[:200],
        "decimals": decimals,
        "logo_url": _logo(token.get("logoURI")),
        "listed": True,
    }, ""


def _logo(uri) -> str:
    if not isinstance(uri, str):
        return ""
    if uri.startswith("ipfs://"):
        uri = settings.IPFS_GATEWAY.rstrip("/") + "/" + uri.removeprefix("ipfs://")
    return uri if uri.startswith(("https://", "http://")) and len(uri) <= 500 else ""
