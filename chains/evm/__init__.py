"""EVM family: one adapter for every EVM chain, configured by chain id, endpoints and token list."""
