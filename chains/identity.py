"""Check one endpoint's chain identity on demand (the admin, on save): the same checks a fetch makes."""

from __future__ import annotations

from chains.base import ChainConfig, ChainError, EndpointConfig


def check_endpoint(chain: ChainConfig, endpoint: EndpointConfig) -> None:
    """Ask ``endpoint`` which chain it serves and compare with ``chain``: the EVM chain id, the Bitcoin
    genesis block (Solana: its adapter's check, when it has one).

    Raises ``EndpointBroken`` when it serves another chain or cannot say, ``ChainError`` (transient) when
    it cannot be reached, both naming the endpoint (redacted).
    """
    if chain.family == "evm":
        from chains.evm.adapter import EvmAdapter

        adapter = EvmAdapter(chain, [endpoint], metadata_fetcher=lambda uri: {})
        adapter._verify_chain_id(endpoint)
    elif chain.family == "bitcoin":
        from chains.bitcoin.adapter import BitcoinAdapter

        backend = BitcoinAdapter(chain, [endpoint]).backend
        verify = getattr(backend, "_verify_genesis", None)
        if verify is not None:
            verify(endpoint)
    elif chain.family == "solana":
        from chains.solana.adapter import SolanaAdapter

        verify = getattr(SolanaAdapter, "verify_endpoint", None)  # added with the Solana genesis-hash check
        if verify is not None:
            verify(SolanaAdapter(chain, [endpoint]), endpoint)
    else:
        raise ChainError(f"unknown chain family {chain.family!r}", permanent=True)
