"""SPL stake-pool liquid staking (jitoSOL-style): pool tokens held -> the SOL they redeem for.

The pool account is spl-stake-pool's ``StakePool`` (Borsh) owned by the stake-pool program; its
``total_lamports`` and ``pool_token_supply`` give the rate, and a holding of ``pool_mint`` is worth
``amount * total_lamports // pool_token_supply`` lamports (the program's own
``calc_lamports_withdraw_amount``, before any withdrawal fee). Pools come from ``chain.extra["stake_pools"]``
(addresses, e.g. admin-managed rows); without that list they are discovered with one
``getProgramAccounts`` per fetch that returns only each pool's mint (32 bytes per pool).
The pool token is then accounted for by the position (``Position.accounts_for``), not a plain holding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chains.base import Position, PositionLeg, Problem
from chains.base58 import b58encode
from chains.solana.accounts import RawAccount, parse_keyed_accounts
from chains.solana.borsh import BorshReader
from chains.solana.protocols.base import PositionContext, SolanaProtocol
from chains.solana.rpc import Call

STAKE_POOL_PROGRAM_ID = "SPoo1Ku8WFXoNDMHPsrGSTSG1Y47rzgn41SLUNakuHy"
ACCOUNT_TYPE_STAKE_POOL = 1
POOL_MINT_OFFSET = 1 + 32 * 3 + 1 + 32 * 2  # account_type, manager, staker, deposit authority, bump, list, reserve


class StakePoolError(ValueError):
    """The account is not a well-formed spl-stake-pool ``StakePool``."""


@dataclass(frozen=True)
class Fee:
    numerator: int
    denominator: int

    def __str__(self) -> str:
        return f"{self.numerator}/{self.denominator}" if self.numerator and self.denominator else "none"


@dataclass(frozen=True)
class StakePool:
    manager: str
    staker: str
    validator_list: str
    reserve_stake: str
    pool_mint: str
    token_program_id: str
    total_lamports: int
    pool_token_supply: int
    last_update_epoch: int
    epoch_fee: Fee
    sol_withdrawal_fee: Fee
    stake_withdrawal_fee: Fee

    def lamports_for(self, pool_tokens: int) -> int:
        """The program's ``calc_lamports_withdraw_amount``: floor(tokens * total / supply), 0 on an empty pool."""
        if self.pool_token_supply == 0:
            return 0
        return pool_tokens * self.total_lamports // self.pool_token_supply


def _fee(r: BorshReader) -> Fee:
    denominator, numerator = r.u64(), r.u64()  # Fee { denominator, numerator }
    return Fee(numerator, denominator)


def _option_fee(r: BorshReader) -> None:
    # FutureEpoch<Fee> (older versions: Option<Fee>): None = 0, One = 1, Two = 2, each but None with a Fee.
    if r.tag(2):
        _fee(r)


def _option_pubkey(r: BorshReader) -> None:
    if r.tag(1):
        r.pubkey()


def parse_stake_pool(data: bytes) -> StakePool:
    """Decode the ``StakePool`` struct (spl-stake-pool ``state.rs``, Borsh). Raises ``StakePoolError``."""
    r = BorshReader(data, StakePoolError, "stake pool account")
    if r.u8() != ACCOUNT_TYPE_STAKE_POOL:
        raise StakePoolError("account is not a stake pool (account type)")
    manager, staker = r.pubkey(), r.pubkey()
    r.pubkey()  # stake_deposit_authority
    r.u8()  # stake_withdraw_bump_seed
    validator_list, reserve, mint = r.pubkey(), r.pubkey(), r.pubkey()
    r.pubkey()  # manager_fee_account
    token_program = r.pubkey()
    total, supply, last_epoch = r.u64(), r.u64(), r.u64()
    r.take(8 + 8 + 32)  # lockup: unix_timestamp, epoch, custodian
    epoch_fee = _fee(r)
    _option_fee(r)  # next_epoch_fee
    _option_pubkey(r)  # preferred_deposit_validator_vote_address
    _option_pubkey(r)  # preferred_withdraw_validator_vote_address
    _fee(r)  # stake_deposit_fee
    stake_withdrawal_fee = _fee(r)
    _option_fee(r)  # next_stake_withdrawal_fee
    r.u8()  # stake_referral_fee
    _option_pubkey(r)  # sol_deposit_authority
    _fee(r)  # sol_deposit_fee
    r.u8()  # sol_referral_fee
    _option_pubkey(r)  # sol_withdraw_authority
    sol_withdrawal_fee = _fee(r)
    _option_fee(r)  # next_sol_withdrawal_fee
    r.u64(), r.u64()  # last_epoch_pool_token_supply, last_epoch_total_lamports
    for fee in (epoch_fee, stake_withdrawal_fee, sol_withdrawal_fee):
        if fee.denominator and fee.numerator > fee.denominator:
            raise StakePoolError("fee above 100%")
    return StakePool(manager, staker, validator_list, reserve, mint, token_program, total, supply, last_epoch,
                     epoch_fee, sol_withdrawal_fee, stake_withdrawal_fee)


def _parse_discovery(result: Any) -> list[tuple[str, str]]:
    out = []
    for key, account in parse_keyed_accounts(result):
        if len(account.data) != 32:
            raise ValueError("dataSlice of a stake pool is not 32 bytes")
        out.append((key, b58encode(account.data)))
    return out


class SplStakePool(SolanaProtocol):
    """Liquid staking through spl-stake-pool pools (``chain.extra``: ``stake_pools``, a list of pool
    addresses; ``stake_pool_programs``, default the SPL program)."""

    name = "spl-stake-pool"
    label = "SPL stake pool"

    def __init__(self, chain: Any) -> None:
        super().__init__(chain)
        extra = chain.extra or {}
        configured = extra.get("stake_pools")
        self.configured: list[str] | None = None if configured is None else [str(p) for p in configured]
        self.programs = [str(p) for p in extra.get("stake_pool_programs") or [STAKE_POOL_PROGRAM_ID]]
        self._discovered: dict[str, str] = {}  # pool -> mint

    def fetch_calls(self) -> list[Call]:
        if self.configured is not None:
            return []
        # Only initialised pools (account type 1 at offset 0), and of each only its mint.
        return [Call("getProgramAccounts", [program, {
            "encoding": "base64", "filters": [{"memcmp": {"offset": 0, "bytes": b58encode(bytes([ACCOUNT_TYPE_STAKE_POOL]))}}],
            "dataSlice": {"offset": POOL_MINT_OFFSET, "length": 32}}], _parse_discovery, optional=True)
            for program in self.programs]

    def take_fetch(self, answers: list[Any]) -> None:
        if self.failed(answers, ""):
            return
        for answer in answers:
            self._discovered.update(answer)

    def _held_mints(self, ctx: PositionContext) -> set[str]:
        return {mint for tokens in ctx.holdings.values() for mint, amount in tokens.items() if amount > 0}

    def account_keys(self, ctx: PositionContext) -> list[str]:
        if self.configured is not None:
            return list(self.configured)
        held = self._held_mints(ctx)
        return sorted(pool for pool, mint in self._discovered.items() if mint in held)

    def positions(self, ctx: PositionContext, problems: list[Problem]) -> list[Position]:
        problems.extend(self.problems)
        pools: dict[str, tuple[str, StakePool]] = {}  # mint -> (pool address, pool)
        for address in self.account_keys(ctx):
            account = ctx.accounts.get(address)
            pool = self._pool(address, account, problems)
            if pool is not None and pool.pool_mint not in pools:
                pools[pool.pool_mint] = (address, pool)
        out = []
        for owner in sorted(ctx.holdings):
            for mint, amount in sorted(ctx.holdings[owner].items()):
                if mint not in pools or amount <= 0:
                    continue
                address, pool = pools[mint]
                if pool.pool_token_supply == 0 or amount > pool.pool_token_supply:
                    problems.append(Problem("protocol_unparseable", f"{self.name}: pool token supply is inconsistent", address))
                    continue
                asset = ctx.assets.get(mint)
                symbol = asset.symbol if asset else mint[:6]
                out.append(Position(
                    owner=owner, protocol=self.name, kind="staking", ref=address,
                    legs=(PositionLeg(ctx.native, pool.lamports_for(amount), "staked"),),
                    label=f"{symbol} (stake pool {address[:4]}…{address[-4:]})",
                    accounts_for=(mint,),
                    details={"pool": address, "pool_mint": mint, "pool_tokens": str(amount),
                             "total_lamports": str(pool.total_lamports), "pool_token_supply": str(pool.pool_token_supply),
                             "last_update_epoch": pool.last_update_epoch, "up_to_date": pool.last_update_epoch >= ctx.epoch,
                             "epoch_fee": str(pool.epoch_fee), "sol_withdrawal_fee": str(pool.sol_withdrawal_fee),
                             "stake_withdrawal_fee": str(pool.stake_withdrawal_fee)},
                ))
        return out

    def _pool(self, address: str, account: RawAccount | None, problems: list[Problem]) -> StakePool | None:
        if account is None:
            problems.append(Problem("protocol_unparseable", f"{self.name}: stake pool account not found", address))
            return None
        if account.owner not in self.programs:
            problems.append(Problem("protocol_unparseable", f"{self.name}: account is not owned by a stake-pool program", address))
            return None
        try:
            return parse_stake_pool(account.data)
        except StakePoolError as exc:
            problems.append(Problem("protocol_unparseable", f"{self.name}: {exc}", address))
            return None
