"""Bitcoin family: address parsing, watch-only HD derivation, bcoin/Esplora backends and the adapter."""
