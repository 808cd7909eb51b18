"""Solana adapter: SOL, SPL Token and Token-2022 balances, Metaplex NFTs and native stake accounts."""
