"""Chain adapters: read-only access to EVM, Bitcoin and Solana chains. Never imports Django."""
