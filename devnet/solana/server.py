"""A loopback JSON-RPC server over solders.litesvm.LiteSVM that speaks Solana's wire format.

Answers the read methods the Solana adapter uses (getSlot, getBalance, getAccountInfo,
getMultipleAccounts, getTokenAccountsByOwner, getProgramAccounts, getSignaturesForAddress (paged),
getTransaction with pre/post SOL and token balances, getGenesisHash, getEpochInfo ...) and the
write methods a scenario needs (sendTransaction, requestAirdrop, getLatestBlockhash), with the
``{"context": {"slot", "apiVersion"}, "value"}`` envelopes Solana uses. Batches (a JSON array) work.
Anything else answers JSON-RPC error -32601.

Devnet-only methods (NOT part of Solana's API, prefixed ``devnet_``):
- ``devnet_setAccount(pubkey, {"lamports", "data": [b64, "base64"], "owner", "executable"?})`` writes an
  account directly (metadata, stake and stake-pool accounts, which need programs LiteSVM does not load).
- ``devnet_warpToSlot(slot)`` moves the chain forward to ``slot`` (and so to its epoch).
- ``devnet_setClock(unix_time)`` moves the clock forward: the current slot gets that block time (and the
  Clock sysvar that ``unix_timestamp``), later slots 400 ms more each, as before.

Run: ``python -m devnet.solana.server --port 8899`` (``--port 0`` picks a free port; the first stdout
line is ``listening on http://127.0.0.1:PORT``).
"""

from __future__ import annotations

import argparse
import base64
import json
import struct
import sys
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from solders.account import Account
from solders.clock import Clock
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction, VersionedTransaction
from solders.transaction_metadata import TransactionMetadata

from chains.base58 import b58decode, b58encode  # the project's one base58

API_VERSION = "2.1.21"
TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
TOKEN_2022_PROGRAM = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"
TOKEN_PROGRAMS = {TOKEN_PROGRAM: "spl-token", TOKEN_2022_PROGRAM: "spl-token-2022"}
RENT_EPOCH_EXEMPT = 2**64 - 1
MAX_MULTIPLE_ACCOUNTS = 100
START_SLOT = 1
SLOTS_PER_EPOCH = 432_000  # as on every public cluster
GENESIS_TIME = 1_700_000_000  # unix time of slot 0; a slot lasts 400 ms, as on the public clusters
# This devnet's own cluster identity (sha256 of "chainfolio-litesvm-devnet", base58): not a public
# cluster's, so an app configured for testnet or mainnet-beta refuses to read it, and the reverse.
GENESIS_HASH = "3JiPDS5sC2DndGHgtNVTGyoZJLxmBRe3k1HGKTZn2Xq4"

class RpcFault(Exception):
    """A JSON-RPC error object to answer with."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data

    def to_json(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err


def _invalid(message: str) -> RpcFault:
    return RpcFault(-32602, f"Invalid params: {message}")


def _pubkey(value: Any) -> Pubkey:
    try:
        return Pubkey.from_string(value)
    except (ValueError, TypeError):
        raise _invalid("Invalid param: WrongSize" if isinstance(value, str) else "Invalid param: not a pubkey") from None


def _ui_amount_string(amount: int, decimals: int) -> str:
    text = format(Decimal(amount).scaleb(-decimals), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _coption_pubkey(data: bytes, offset: int) -> str | None:
    tag = struct.unpack_from("<I", data, offset)[0]
    return b58encode(data[offset + 4 : offset + 36]) if tag == 1 else None


def _pubkey_or_none(raw: bytes) -> str | None:
    return None if raw == bytes(32) else b58encode(raw)


def _parse_extensions(data: bytes) -> list[dict[str, Any]]:
    """Token-2022 TLV extensions after the 165-byte base and the account-type byte."""
    out: list[dict[str, Any]] = []
    pos = 166
    while pos + 4 <= len(data):
        ext_type, length = struct.unpack_from("<HH", data, pos)
        if ext_type == 0:
            break
        value = data[pos + 4 : pos + 4 + length]
        pos += 4 + length
        if ext_type == 18 and len(value) >= 64:
            out.append({"extension": "metadataPointer", "state": {
                "authority": _pubkey_or_none(value[:32]), "metadataAddress": _pubkey_or_none(value[32:64])}})
        elif ext_type == 19:
            try:
                out.append({"extension": "tokenMetadata", "state": _parse_token_metadata(value)})
            except (struct.error, UnicodeDecodeError):
                out.append({"extension": "unparseableExtension"})
        else:
            out.append({"extension": "unparseableExtension"})
    return out


def _parse_token_metadata(value: bytes) -> dict[str, Any]:
    pos = 64

    def string() -> str:
        nonlocal pos
        (n,) = struct.unpack_from("<I", value, pos)
        text = value[pos + 4 : pos + 4 + n].decode("utf-8")
        pos += 4 + n
        return text

    name, symbol, uri = string(), string(), string()
    (count,) = struct.unpack_from("<I", value, pos)
    pos += 4
    extra = [[string(), string()] for _ in range(count)]
    return {"updateAuthority": _pubkey_or_none(value[:32]), "mint": b58encode(value[32:64]),
            "name": name, "symbol": symbol, "uri": uri, "additionalMetadata": extra}


def _tx_error_json(err: Any) -> Any:
    """A solders TransactionError in the JSON shape a validator sends (``"AlreadyProcessed"``,
    ``{"InstructionError": [0, {"Custom": 1}]}``, ...); None if unknown."""
    name = type(err).__name__
    if name == "TransactionErrorFieldless":
        return str(err).rsplit(".", 1)[-1]
    if name == "TransactionErrorInsufficientFundsForRent":
        return {"InsufficientFundsForRent": {"account_index": err.account_index}}
    if name == "TransactionErrorProgramExecutionTemporarilyRestricted":
        return {"ProgramExecutionTemporarilyRestricted": {"account_index": err.account_index}}
    if name == "TransactionErrorDuplicateInstruction":
        return {"DuplicateInstruction": err.index}
    if name == "TransactionErrorInstructionError":
        index, inner = err.index, err.err
        inner_name = type(inner).__name__
        if inner_name == "InstructionErrorCustom":
            detail: Any = {"Custom": inner.code}
        elif inner_name == "InstructionErrorBorshIO":
            detail = {"BorshIoError": str(inner.value)}
        else:
            detail = str(inner).rsplit(".", 1)[-1]
        return {"InstructionError": [index, detail]}
    return None


class SolanaDevnet:
    """The chain state (one LiteSVM) plus what a validator's RPC keeps on the side: the slot and a
    signature index by address. Every public method holds the lock."""

    def __init__(self) -> None:
        self.svm = LiteSVM()
        self.slot = START_SLOT
        self.svm.warp_to_slot(self.slot)
        self.signatures: dict[str, list[tuple[int, str]]] = {}
        self.transactions: dict[str, dict[str, Any]] = {}  # signature -> what getTransaction answers
        self.tx_count = 0
        self.clock_marks: list[tuple[int, int]] = [(0, GENESIS_TIME)]  # (slot, its block time): the clock's jumps
        self.lock = threading.Lock()

    # ------------------------------------------------------------------ helpers

    def context(self) -> dict[str, Any]:
        return {"slot": self.slot, "apiVersion": API_VERSION}

    def envelope(self, value: Any) -> dict[str, Any]:
        return {"context": self.context(), "value": value}

    def _advance(self) -> None:
        self.slot += 1
        self.svm.warp_to_slot(self.slot)
        self.svm.expire_blockhash()

    def block_time(self, slot: int) -> int:
        """Unix time of ``slot``: 400 ms a slot since the last clock jump at or before it."""
        mark_slot, mark_time = next(m for m in reversed(self.clock_marks) if m[0] <= slot)
        return mark_time + (slot - mark_slot) * 2 // 5

    def _token_balances(self, keys: list[Pubkey]) -> list[dict[str, Any]]:
        """preTokenBalances / postTokenBalances: the token accounts among ``keys``, by account index."""
        out = []
        for index, key in enumerate(keys):
            acct = self.svm.get_account(key)
            if acct is None or str(acct.owner) not in TOKEN_PROGRAMS or acct.lamports == 0:
                continue
            data = bytes(acct.data)
            if len(data) < 165 or (len(data) > 165 and data[165] != 2):
                continue
            decimals = self._mint_decimals(Pubkey.from_bytes(data[0:32]))
            amount = struct.unpack_from("<Q", data, 64)[0]
            out.append({"accountIndex": index, "mint": b58encode(data[0:32]), "owner": b58encode(data[32:64]),
                        "programId": str(acct.owner), "uiTokenAmount": {
                            "amount": str(amount), "decimals": decimals,
                            "uiAmount": float(Decimal(amount).scaleb(-decimals)) if amount else None,
                            "uiAmountString": _ui_amount_string(amount, decimals)}})
        return out

    def _snapshot(self, keys: list[Pubkey]) -> tuple[list[int], list[dict[str, Any]]]:
        return [int(self.svm.get_balance(k) or 0) for k in keys], self._token_balances(keys)

    def _record(self, tx: Any, result: TransactionMetadata, keys: list[Pubkey],
                before: tuple[list[int], list[dict[str, Any]]]) -> None:
        """Keep what getTransaction answers for a processed transaction (LiteSVM keeps no balances)."""
        after = self._snapshot(keys)
        self.transactions[str(result.signature())] = {
            "slot": self.slot, "blockTime": self.block_time(self.slot), "tx": tx,
            "meta": {"err": None, "status": {"Ok": None}, "fee": int(result.fee()),
                     "preBalances": before[0], "postBalances": after[0], "innerInstructions": [],
                     "logMessages": list(result.logs()), "preTokenBalances": before[1], "postTokenBalances": after[1],
                     "rewards": [], "loadedAddresses": {"writable": [], "readonly": []},
                     "computeUnitsConsumed": int(result.compute_units_consumed())},
        }

    def _index(self, signature: str, keys: list[str]) -> None:
        for key in dict.fromkeys(keys):
            self.signatures.setdefault(key, []).append((self.slot, signature))
        self.tx_count += 1

    def _mint_decimals(self, mint: Pubkey) -> int:
        acct = self.svm.get_account(mint)
        if acct is None or len(acct.data) < 45:
            return 0
        return bytes(acct.data)[44]

    def _json_parsed(self, owner: str, data: bytes) -> dict[str, Any] | None:
        program = TOKEN_PROGRAMS.get(owner)
        if program is None:
            return None
        if len(data) == 82 or (len(data) > 165 and data[165] == 1):
            info: dict[str, Any] = {
                "decimals": data[44],
                "freezeAuthority": _coption_pubkey(data, 46),
                "isInitialized": bool(data[45]),
                "mintAuthority": _coption_pubkey(data, 0),
                "supply": str(struct.unpack_from("<Q", data, 36)[0]),
            }
            kind = "mint"
        elif len(data) == 165 or (len(data) > 165 and data[165] == 2):
            mint_raw = data[0:32]
            decimals = self._mint_decimals(Pubkey.from_bytes(mint_raw))
            amount = struct.unpack_from("<Q", data, 64)[0]
            state = {0: "uninitialized", 1: "initialized", 2: "frozen"}.get(data[108], "uninitialized")
            is_native = struct.unpack_from("<I", data, 109)[0] == 1
            info = {
                "isNative": is_native,
                "mint": b58encode(mint_raw),
                "owner": b58encode(data[32:64]),
                "state": state,
                "tokenAmount": {
                    "amount": str(amount),
                    "decimals": decimals,
                    "uiAmount": float(Decimal(amount).scaleb(-decimals)),
                    "uiAmountString": _ui_amount_string(amount, decimals),
                },
            }
            delegate = _coption_pubkey(data, 72)
            if delegate:
                delegated = struct.unpack_from("<Q", data, 121)[0]
                info["delegate"] = delegate
                info["delegatedAmount"] = {
                    "amount": str(delegated), "decimals": decimals,
                    "uiAmount": float(Decimal(delegated).scaleb(-decimals)),
                    "uiAmountString": _ui_amount_string(delegated, decimals),
                }
            close = _coption_pubkey(data, 129)
            if close:
                info["closeAuthority"] = close
            kind = "account"
        else:
            return None
        if len(data) > 165:
            info["extensions"] = _parse_extensions(data)
        return {"program": program, "parsed": {"info": info, "type": kind}, "space": len(data)}

    def encode_account(self, acct: Account | None, encoding: str = "base64", data_slice: dict | None = None) -> dict[str, Any] | None:
        if acct is None:
            return None
        data = bytes(acct.data)
        owner = str(acct.owner)
        parsed = self._json_parsed(owner, data) if encoding == "jsonParsed" and not data_slice else None
        if parsed is None:
            if data_slice:
                off, length = int(data_slice.get("offset", 0)), int(data_slice.get("length", 0))
                data = data[off : off + length]
            if encoding == "base58":
                if len(data) > 128:
                    raise _invalid("Encoded binary (base 58) data should be less than 128 bytes, please use Base64 encoding.")
                encoded: Any = [b58encode(data), "base58"]
            elif encoding == "base64+zstd":
                raise _invalid("base64+zstd is not supported by this devnet")
            else:
                encoded = [base64.b64encode(data).decode(), "base64"]
        else:
            encoded = parsed
        return {
            "data": encoded,
            "executable": bool(acct.executable),
            "lamports": int(acct.lamports),
            "owner": owner,
            "rentEpoch": RENT_EPOCH_EXEMPT,
            "space": len(bytes(acct.data)),
        }

    # ------------------------------------------------------------------ methods

    def getHealth(self) -> str:
        return "ok"

    def getVersion(self) -> dict[str, Any]:
        return {"solana-core": API_VERSION, "feature-set": 3294202862}

    def getGenesisHash(self) -> str:
        return GENESIS_HASH

    def getSlot(self, config: dict | None = None) -> int:
        return self.slot

    def getBlockHeight(self, config: dict | None = None) -> int:
        return self.slot

    def getBlockTime(self, slot: int) -> int:
        if not isinstance(slot, int) or isinstance(slot, bool) or not 0 <= slot <= self.slot:
            raise RpcFault(-32004, f"Block not available for slot {slot}")
        return self.block_time(slot)

    def getEpochInfo(self, config: dict | None = None) -> dict[str, Any]:
        return {"absoluteSlot": self.slot, "blockHeight": self.slot, "epoch": self.slot // SLOTS_PER_EPOCH,
                "slotIndex": self.slot % SLOTS_PER_EPOCH, "slotsInEpoch": SLOTS_PER_EPOCH, "transactionCount": self.tx_count}

    def getMinimumBalanceForRentExemption(self, size: int, config: dict | None = None) -> int:
        return int(self.svm.minimum_balance_for_rent_exemption(int(size)))

    def getLatestBlockhash(self, config: dict | None = None) -> dict[str, Any]:
        return self.envelope({"blockhash": str(self.svm.latest_blockhash()), "lastValidBlockHeight": self.slot + 150})

    def getBalance(self, pubkey: str, config: dict | None = None) -> dict[str, Any]:
        return self.envelope(int(self.svm.get_balance(_pubkey(pubkey)) or 0))

    def getAccountInfo(self, pubkey: str, config: dict | None = None) -> dict[str, Any]:
        config = config or {}
        acct = self.svm.get_account(_pubkey(pubkey))
        if acct is not None and acct.lamports == 0:
            acct = None
        return self.envelope(self.encode_account(acct, config.get("encoding") or "base64", config.get("dataSlice")))

    def getMultipleAccounts(self, pubkeys: list[str], config: dict | None = None) -> dict[str, Any]:
        config = config or {}
        if not isinstance(pubkeys, list):
            raise _invalid("expected an array of pubkeys")
        if len(pubkeys) > MAX_MULTIPLE_ACCOUNTS:
            raise _invalid(f"Too many inputs provided; max {MAX_MULTIPLE_ACCOUNTS}")
        keys = [_pubkey(k) for k in pubkeys]
        out = []
        for key in keys:
            acct = self.svm.get_account(key)
            if acct is not None and acct.lamports == 0:
                acct = None
            out.append(self.encode_account(acct, config.get("encoding") or "base64", config.get("dataSlice")))
        return self.envelope(out)

    def _program_accounts(self, program: str) -> list[tuple[Pubkey, Account]]:
        return [(k, a) for k, a in self.svm.get_program_accounts(_pubkey(program)) if a.lamports > 0]

    def getTokenAccountsByOwner(self, owner: str, filt: dict, config: dict | None = None) -> dict[str, Any]:
        config = config or {}
        owner_raw = bytes(_pubkey(owner))
        if not isinstance(filt, dict) or not ({"mint", "programId"} & filt.keys()):
            raise _invalid("Invalid param: expected mint or programId")
        mint_raw = None
        if "mint" in filt:
            mint = _pubkey(filt["mint"])
            mint_acct = self.svm.get_account(mint)
            if mint_acct is None or str(mint_acct.owner) not in TOKEN_PROGRAMS:
                raise _invalid("Invalid param: could not find mint")
            program, mint_raw = str(mint_acct.owner), bytes(mint)
        else:
            program = str(filt["programId"])
            if program not in TOKEN_PROGRAMS:
                raise _invalid("Invalid param: unrecognized Token program id")
        out = []
        for key, acct in self._program_accounts(program):
            data = bytes(acct.data)
            if len(data) < 165 or (len(data) > 165 and data[165] != 2):
                continue
            if data[32:64] != owner_raw or (mint_raw is not None and data[0:32] != mint_raw):
                continue
            out.append({"pubkey": str(key), "account": self.encode_account(acct, config.get("encoding") or "base64", config.get("dataSlice"))})
        return self.envelope(out)

    def getProgramAccounts(self, program: str, config: dict | None = None) -> Any:
        config = config or {}
        filters = config.get("filters") or []
        checks: list[tuple[int, bytes] | int] = []
        for f in filters:
            if "dataSize" in f:
                checks.append(int(f["dataSize"]))
            elif "memcmp" in f:
                m = f["memcmp"]
                enc = m.get("encoding") or "base58"
                try:
                    raw = base64.b64decode(m["bytes"]) if enc == "base64" else b58decode(m["bytes"])
                except (ValueError, KeyError):
                    raise _invalid("Invalid param: memcmp bytes") from None
                checks.append((int(m.get("offset", 0)), raw))
            else:
                raise _invalid("Invalid param: unsupported filter")
        out = []
        for key, acct in self._program_accounts(program):
            data = bytes(acct.data)
            ok = True
            for check in checks:
                if isinstance(check, int):
                    ok = len(data) == check
                else:
                    off, raw = check
                    ok = data[off : off + len(raw)] == raw
                if not ok:
                    break
            if ok:
                out.append({"pubkey": str(key), "account": self.encode_account(acct, config.get("encoding") or "base64", config.get("dataSlice"))})
        return self.envelope(out) if config.get("withContext") else out

    def getSignaturesForAddress(self, address: str, config: dict | None = None) -> list[dict[str, Any]]:
        config = config or {}
        _pubkey(address)
        limit = min(int(config.get("limit") or 1000), 1000)
        entries = list(reversed(self.signatures.get(address, [])))
        before, until = config.get("before"), config.get("until")
        if before:
            idx = next((i for i, (_, s) in enumerate(entries) if s == before), None)
            entries = entries[idx + 1 :] if idx is not None else entries
        out = []
        for slot, sig in entries:
            if until and sig == until:
                break
            out.append({"signature": sig, "slot": slot, "err": None, "memo": None, "blockTime": self.block_time(slot),
                        "confirmationStatus": "finalized"})
            if len(out) >= limit:
                break
        return out

    def getTransaction(self, signature: str, config: Any = None) -> dict[str, Any] | None:
        """A processed transaction with its status meta (SOL and token balances before and after) in
        ``json`` or ``base64`` encoding; None for an unknown signature."""
        config = config if isinstance(config, dict) else {"encoding": config} if isinstance(config, str) else {}
        try:
            Signature.from_string(signature)
        except (ValueError, TypeError):
            raise _invalid("Invalid param: not a signature") from None
        record = self.transactions.get(signature)
        if record is None:
            return None
        encoding = config.get("encoding") or "json"
        tx = record["tx"]
        message = tx.message
        if encoding == "base64":
            encoded: Any = [base64.b64encode(bytes(tx)).decode(), "base64"]
        elif encoding == "json":
            header = message.header
            encoded = {"signatures": [str(s) for s in tx.signatures], "message": {
                "accountKeys": [str(k) for k in message.account_keys],
                "header": {"numRequiredSignatures": header.num_required_signatures,
                           "numReadonlySignedAccounts": header.num_readonly_signed_accounts,
                           "numReadonlyUnsignedAccounts": header.num_readonly_unsigned_accounts},
                "recentBlockhash": str(message.recent_blockhash),
                "instructions": [{"programIdIndex": ix.program_id_index, "accounts": list(bytes(ix.accounts)),
                                  "data": b58encode(bytes(ix.data)), "stackHeight": None} for ix in message.instructions]}}
        else:
            raise _invalid(f"unsupported encoding {encoding} (this devnet answers json and base64)")
        out = {"slot": record["slot"], "blockTime": record["blockTime"], "transaction": encoded, "meta": record["meta"]}
        if config.get("maxSupportedTransactionVersion") is not None:
            out["version"] = "legacy"
        return out

    def getSignatureStatuses(self, signatures: list[str], config: dict | None = None) -> dict[str, Any]:
        found = {sig: slot for entries in self.signatures.values() for slot, sig in entries}
        return self.envelope([
            {"slot": found[s], "confirmations": None, "err": None, "status": {"Ok": None}, "confirmationStatus": "finalized"}
            if s in found else None
            for s in signatures
        ])

    def sendTransaction(self, encoded: str, config: dict | None = None) -> str:
        config = config or {}
        try:
            raw = base64.b64decode(encoded) if config.get("encoding") == "base64" else b58decode(encoded)
            tx = VersionedTransaction.from_bytes(raw)
        except Exception:  # noqa: BLE001 - anything undecodable is the caller's fault
            raise _invalid("failed to deserialize transaction") from None
        keys = list(tx.message.account_keys)
        before = self._snapshot(keys)
        result = self.svm.send_transaction(tx)
        if not isinstance(result, TransactionMetadata):
            meta = result.meta()
            raise RpcFault(-32002, f"Transaction simulation failed: {result.err()}", {
                "accounts": None, "err": _tx_error_json(result.err()), "logs": list(meta.logs()), "returnData": None,
                "unitsConsumed": meta.compute_units_consumed(), "innerInstructions": None,
            })
        signature = str(result.signature())
        self._record(tx, result, keys, before)
        self._index(signature, [str(k) for k in keys])
        self._advance()
        return signature

    def requestAirdrop(self, pubkey: str, lamports: int, config: dict | None = None) -> str:
        key = _pubkey(pubkey)
        faucet = self.svm.airdrop_pubkey()
        # The faucet's transfer, as the message a validator would show for it.
        message = Message.new_with_blockhash([transfer(TransferParams(from_pubkey=faucet, to_pubkey=key, lamports=int(lamports)))],
                                             faucet, self.svm.latest_blockhash())
        keys = list(message.account_keys)
        before = self._snapshot(keys)
        result = self.svm.airdrop(key, int(lamports))
        if not isinstance(result, TransactionMetadata):
            raise RpcFault(-32600, f"airdrop failed: {result.err()}")
        signature = str(result.signature())
        self._record(Transaction.populate(message, [result.signature()]), result, keys, before)
        self._index(signature, [str(faucet), pubkey])
        self._advance()
        return signature

    def devnet_setAccount(self, pubkey: str, spec: dict) -> None:
        """Devnet only: write an account as is (metadata, stake). Not part of Solana's API."""
        try:
            data = spec.get("data", "")
            raw = base64.b64decode(data[0] if isinstance(data, list) else data)
            acct = Account(int(spec["lamports"]), raw, _pubkey(spec["owner"]), bool(spec.get("executable", False)), 0)
        except (KeyError, ValueError, TypeError):
            raise _invalid("expected {lamports, data: [base64, 'base64'], owner}") from None
        self.svm.set_account(_pubkey(pubkey), acct)
        self._advance()
        return None

    def devnet_warpToSlot(self, slot: int) -> int:
        """Devnet only: jump forward to ``slot`` (never back). Returns the slot now current."""
        if not isinstance(slot, int) or slot < self.slot:
            raise _invalid("slot must be an integer not below the current slot")
        self.slot = slot
        self.svm.warp_to_slot(self.slot)
        self.svm.expire_blockhash()
        return self.slot

    def devnet_setClock(self, unix_time: int) -> int:
        """Devnet only: from the current slot on, block times start at ``unix_time`` (never back).
        Also sets the Clock sysvar's ``unix_timestamp``. Returns the current slot's block time."""
        if not isinstance(unix_time, int) or isinstance(unix_time, bool) or unix_time < self.block_time(self.slot):
            raise _invalid("unix_time must be an integer not before the current slot's block time")
        self.clock_marks = [m for m in self.clock_marks if m[0] < self.slot] + [(self.slot, unix_time)]
        clock = self.svm.get_clock()
        self.svm.set_clock(Clock(clock.slot, clock.epoch_start_timestamp, clock.epoch, clock.leader_schedule_epoch, unix_time))
        return unix_time

    # ------------------------------------------------------------------ dispatch

    METHODS = frozenset({
        "getHealth", "getVersion", "getGenesisHash", "getSlot", "getBlockHeight", "getBlockTime", "getEpochInfo",
        "getMinimumBalanceForRentExemption", "getLatestBlockhash", "getBalance", "getAccountInfo",
        "getMultipleAccounts", "getTokenAccountsByOwner", "getProgramAccounts", "getSignaturesForAddress",
        "getSignatureStatuses", "getTransaction", "sendTransaction", "requestAirdrop", "devnet_setAccount", "devnet_warpToSlot",
        "devnet_setClock",
    })

    def handle_one(self, request: Any) -> dict[str, Any] | None:
        """One JSON-RPC request object -> its response object (None for a notification)."""
        if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" or not isinstance(request.get("method"), str):
            return {"jsonrpc": "2.0", "id": request.get("id") if isinstance(request, dict) else None,
                    "error": {"code": -32600, "message": "Invalid request"}}
        rid = request.get("id")
        method, params = request["method"], request.get("params") or []
        try:
            if method not in self.METHODS:
                raise RpcFault(-32601, "Method not found")
            if not isinstance(params, list):
                raise _invalid("params must be an array")
            with self.lock:
                try:
                    result = getattr(self, method)(*params)
                except TypeError:
                    raise _invalid("wrong number of parameters") from None
        except RpcFault as fault:
            return {"jsonrpc": "2.0", "id": rid, "error": fault.to_json()}
        return {"jsonrpc": "2.0", "id": rid, "result": result}

    def handle(self, body: bytes) -> Any:
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}}
        if isinstance(payload, list):
            if not payload:
                return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "Invalid request"}}
            return [self.handle_one(item) for item in payload]
        return self.handle_one(payload)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: without this, +40 ms per answer
    server: "SolanaRpcServer"

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        length = int(self.headers.get("content-length") or 0)
        reply = self.server.devnet.handle(self.rfile.read(length))
        body = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        body = b"ok" if self.path == "/health" else b"POST JSON-RPC here"
        self.send_response(200 if self.path == "/health" else 405)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by default
        pass


class SolanaRpcServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # clients open many connections at once; the default backlog of 5 resets them

    def __init__(self, host: str = "127.0.0.1", port: int = 0, devnet: SolanaDevnet | None = None) -> None:
        self.devnet = devnet or SolanaDevnet()
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8899)
    args = parser.parse_args(argv)
    server = SolanaRpcServer(args.host, args.port)
    print(f"listening on {server.url}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
