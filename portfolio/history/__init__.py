"""History from day one: backfills that rebuild a wallet-chain's past from its chain (``backfill``),
and how one is started (``start``, which a sync calls without importing the backfill itself)."""
