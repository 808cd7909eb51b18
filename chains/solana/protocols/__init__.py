"""Solana DeFi and staking protocols, one module each: the registry the adapter runs (name -> class)."""

from __future__ import annotations

from chains.solana.protocols.base import PositionContext, SolanaProtocol
from chains.solana.protocols.native_stake import NativeStake
from chains.solana.protocols.stake_pool import SplStakePool

PROTOCOLS: dict[str, type[SolanaProtocol]] = {
    NativeStake.name: NativeStake,
    SplStakePool.name: SplStakePool,
}

__all__ = ["PROTOCOLS", "PositionContext", "SolanaProtocol"]
