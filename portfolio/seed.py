"""Default chains and endpoints: the public mainnets, and the local devnets `make run` starts."""

from datetime import timedelta

# Local devnet ports used by `make run` (devnet/run.py); tests start their own on free ports.
ANVIL_PORT, BCOIN_PORT, SOLANA_PORT = 8545, 18443, 8899

CHAINS = [
    # slug, name, family, chain_id, network, symbol, native name, decimals, coingecko id, platform, explorer base, endpoints
    ("ethereum", "Ethereum", "evm", 1, "mainnet", "ETH", "Ether", 18, "ethereum", "ethereum", "https://etherscan.io",
     ["https://ethereum-rpc.publicnode.com", "https://eth.llamarpc.com"]),
    ("arbitrum", "Arbitrum One", "evm", 42161, "mainnet", "ETH", "Ether", 18, "ethereum", "arbitrum-one", "https://arbiscan.io",
     ["https://arb1.arbitrum.io/rpc", "https://arbitrum-one-rpc.publicnode.com"]),
    ("optimism", "OP Mainnet", "evm", 10, "mainnet", "ETH", "Ether", 18, "ethereum", "optimistic-ethereum", "https://optimistic.etherscan.io",
     ["https://mainnet.optimism.io", "https://optimism-rpc.publicnode.com"]),
    ("base", "Base", "evm", 8453, "mainnet", "ETH", "Ether", 18, "ethereum", "base", "https://basescan.org",
     ["https://mainnet.base.org", "https://base-rpc.publicnode.com"]),
    ("polygon", "Polygon PoS", "evm", 137, "mainnet", "POL", "Polygon Ecosystem Token", 18, "polygon-ecosystem-token", "polygon-pos", "https://polygonscan.com",
     ["https://polygon-rpc.com", "https://polygon-bor-rpc.publicnode.com"]),
    ("bsc", "BNB Smart Chain", "evm", 56, "mainnet", "BNB", "BNB", 18, "binancecoin", "binance-smart-chain", "https://bscscan.com",
     ["https://bsc-dataseed.bnbchain.org", "https://bsc-rpc.publicnode.com"]),
    ("bitcoin", "Bitcoin", "bitcoin", None, "mainnet", "BTC", "Bitcoin", 8, "bitcoin", "", "https://mempool.space",
     ["https://blockstream.info/api", "https://mempool.space/api"]),
    ("solana", "Solana", "solana", None, "mainnet", "SOL", "Solana", 9, "solana", "solana", "https://solscan.io",
     ["https://api.mainnet-beta.solana.com"]),
    ("anvil", "Anvil (local)", "evm", 31337, "devnet", "ETH", "Ether", 18, "", "", "",
     [f"http://127.0.0.1:{ANVIL_PORT}"]),
    ("bitcoin-regtest", "Bitcoin (regtest)", "bitcoin", None, "regtest", "BTC", "Bitcoin", 8, "", "", "",
     [f"http://127.0.0.1:{BCOIN_PORT}"]),
    ("solana-local", "Solana (local)", "solana", None, "devnet", "SOL", "Solana", 9, "", "", "",
     [f"http://127.0.0.1:{SOLANA_PORT}"]),
]


def explorer_templates(family: str, base: str) -> dict[str, str]:
    if not base:
        return {"explorer_address_url": "", "explorer_tx_url": "", "explorer_token_url": ""}
    if family == "bitcoin":
        return {"explorer_address_url": f"{base}/address/{{address}}", "explorer_tx_url": f"{base}/tx/{{tx}}", "explorer_token_url": ""}
    if family == "solana":
        return {"explorer_address_url": f"{base}/account/{{address}}", "explorer_tx_url": f"{base}/tx/{{tx}}", "explorer_token_url": f"{base}/token/{{token}}"}
    return {"explorer_address_url": f"{base}/address/{{address}}", "explorer_tx_url": f"{base}/tx/{{tx}}", "explorer_token_url": f"{base}/token/{{token}}"}


def seed_chains(Chain, RpcEndpoint, Asset) -> None:
    """Create missing default chains with their endpoints and native asset; never overwrite admin edits.

    Mainnets start enabled; the local devnets start disabled (``make run`` enables them)."""
    for order, (slug, name, family, chain_id, network, symbol, native_name, decimals, cg_id, platform, explorer, urls) in enumerate(CHAINS):
        chain, created = Chain.objects.get_or_create(
            slug=slug,
            defaults=dict(
                name=name, family=family, chain_id=chain_id, network=network, native_symbol=symbol,
                native_name=native_name, native_decimals=decimals, native_coingecko_id=cg_id,
                coingecko_platform=platform, enabled=network != "devnet" and network != "regtest",
                sync_interval=timedelta(minutes=1 if network in ("devnet", "regtest") else 10),
                log_scan_start=0 if network in ("devnet", "regtest") else None,
                sort_order=order, **explorer_templates(family, explorer),
            ),
        )
        if not created:
            continue
        for priority, url in enumerate(urls):
            RpcEndpoint.objects.create(chain=chain, url=url, priority=priority * 10)
        Asset.objects.get_or_create(
            chain=chain, address="",
            defaults=dict(kind="native", standard="native", symbol=symbol, name=native_name, decimals=decimals,
                          listed=True, coingecko_id=cg_id),
        )
