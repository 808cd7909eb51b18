"""Recognise private keys and seed phrases so a watch-only app can refuse, and never keep, them."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from functools import lru_cache
from pathlib import Path

from chains.base import SecretRefused
from chains.base58 import b58decode

WATCH_ONLY_MESSAGE = (
    "This looks like a private key or seed phrase. This app is watch-only: never paste private keys, "
    "extended private keys or seed phrases anywhere. Enter a public address or an extended public key "
    "(xpub/ypub/zpub) instead."
)

MNEMONIC_LENGTHS = (12, 15, 18, 21, 24)
_HEX64 = re.compile(r"^(0[xX])?[0-9a-fA-F]{64}$")
_PRV = re.compile(r"^[xyztuvXYZTUV]prv[1-9A-HJ-NP-Za-km-z]{20,}$")
_TOKEN_SPLIT = re.compile(r"[\s,;\"'\[\]{}()]+")
_B58_TOKEN = re.compile(r"[1-9A-HJ-NP-Za-km-z]{50,100}")
_HEX_TOKEN = re.compile(r"(?<![0-9a-fA-Fx])(0x)?[0-9a-fA-F]{64}(?![0-9a-fA-F])")
_PRV_TOKEN = re.compile(r"[xyztuvXYZTUV]prv[1-9A-HJ-NP-Za-km-z]{20,}")
_JSON_BYTES = re.compile(r"\[\s*(?:\d{1,3}\s*,\s*){63}\d{1,3}\s*\]")


@lru_cache(maxsize=1)
def bip39_words() -> frozenset[str]:
    """The English BIP-39 word list, read from bitcoinlib's package data without importing bitcoinlib."""
    spec = importlib.util.find_spec("bitcoinlib")
    if spec is None or not spec.origin:
        return frozenset()
    path = Path(spec.origin).parent / "wordlist" / "english.txt"
    return frozenset(w.strip() for w in path.read_text().split() if w.strip())


def _b58(text: str) -> bytes | None:
    try:
        return b58decode(text)
    except ValueError:
        return None


def _is_wif(token: str) -> bool:
    if not 50 <= len(token) <= 52:
        return False
    raw = _b58(token)
    if raw is None or len(raw) not in (37, 38):
        return False
    payload, checksum = raw[:-4], raw[-4:]
    if hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] != checksum:
        return False
    return payload[0] in (0x80, 0xEF) and (len(payload) == 33 or payload[-1] == 0x01)


def _is_solana_secret(token: str) -> bool:
    if 80 <= len(token) <= 90:
        raw = _b58(token)
        return raw is not None and len(raw) == 64
    return False


def _is_json_secret(text: str) -> bool:
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return isinstance(data, list) and len(data) == 64 and all(isinstance(b, int) and 0 <= b <= 255 for b in data)


def _is_json_seed(text: str) -> bool:
    """A bare 32-byte ed25519 seed as a JSON byte array (half of a solana-keygen file)."""
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return isinstance(data, list) and len(data) == 32 and all(isinstance(b, int) and 0 <= b <= 255 for b in data)


def _mnemonic_like(words: list[str]) -> bool:
    wordlist = bip39_words()
    if not wordlist or len(words) < 12:
        return False
    known = sum(1 for w in words if w.lower() in wordlist)
    # A real phrase has every word in the list; a typo or two must not slip through either.
    return known >= 9 and known >= 0.75 * len(words)


def secret_kind(text: str) -> str | None:
    """The kind of secret ``text`` contains, or None. Checks the whole text and each token in it."""
    stripped = text.strip()
    if not stripped:
        return None
    if _mnemonic_like(re.findall(r"[A-Za-z]+", stripped)):
        return "seed phrase"
    if _JSON_BYTES.search(stripped) and _is_json_secret(_JSON_BYTES.search(stripped).group(0)):
        return "Solana secret key"
    if stripped.startswith("[") and _is_json_seed(stripped):
        return "Solana secret key"
    if _HEX64.match(re.sub(r"[\s:_-]+", "", stripped)):  # a hex key pasted in groups
        return "private key (hex)"
    for token in filter(None, _TOKEN_SPLIT.split(stripped)):
        if _HEX64.match(token):
            return "private key (hex)"
        if _PRV.match(token):
            return "extended private key"
        if _is_wif(token):
            return "private key (WIF)"
        if _is_solana_secret(token):
            return "Solana secret key"
    return None


def refuse_secrets(text: str) -> None:
    """Raise ``SecretRefused`` (whose message never contains ``text``) if ``text`` holds a secret."""
    kind = secret_kind(text)
    if kind:
        raise SecretRefused(f"{WATCH_ONLY_MESSAGE} (detected: {kind})", permanent=True)


def redact_secrets(text: str) -> str:
    """Replace anything secret-looking in free text (log lines) with ``[redacted]``."""
    if not text:
        return text
    out = _PRV_TOKEN.sub("[redacted]", text)
    out = _HEX_TOKEN.sub("[redacted]", out)
    out = _JSON_BYTES.sub(lambda m: "[redacted]" if _is_json_secret(m.group(0)) else m.group(0), out)
    out = _B58_TOKEN.sub(lambda m: "[redacted]" if _is_wif(m.group(0)) or _is_solana_secret(m.group(0)) else m.group(0), out)
    wordlist = bip39_words()
    if wordlist:
        # Runs of 12+ word-list words (with anything non-alphabetic between them).
        tokens = re.split(r"([A-Za-z]+)", out)
        run: list[int] = []
        runs: list[list[int]] = []
        for i, tok in enumerate(tokens):
            if i % 2 == 1:
                if tok.lower() in wordlist:
                    run.append(i)
                    continue
                if len(run) >= 12:
                    runs.append(run)
                run = []
            elif tok.strip() and not re.fullmatch(r"[\s,;.\-]*", tok):
                if len(run) >= 12:
                    runs.append(run)
                run = []
        if len(run) >= 12:
            runs.append(run)
        for r in runs:
            for j, i in enumerate(r):
                tokens[i] = "[redacted]" if j == 0 else ""
            for i in range(r[0] + 1, r[-1]):
                if i % 2 == 0:
                    tokens[i] = ""
        out = "".join(tokens)
    return out
