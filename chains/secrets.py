"""Recognise private keys and seed phrases anywhere inside a text, so a watch-only app can refuse, redact and
never keep them.

One scanner (``find_secrets``) serves refusing input (``secret_kind``/``refuse_secrets``) and redacting log
lines (``redact_secrets``), so what is refused and what is redacted never drift apart. It finds, inside any
text: runs of 64+ hex digits (with or without ``0x``, with spaces, colons, dashes or underscores between
groups, glued to ``key=``/``pk:`` or punctuation); WIF keys and extended private keys (xprv, yprv, zprv, tprv,
...); Solana secret keys as base58 or as JSON byte arrays; and 12+ words of any official BIP-39 word list
(English, Chinese simplified/traditional, Japanese, Korean, French, Spanish, Italian, Czech, Portuguese and
the others the ``mnemonic`` package ships), with or without separators, in any case, accents optional.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from functools import lru_cache
from importlib import resources
from urllib.parse import unquote_plus

from chains.base import SecretRefused
from chains.base58 import b58decode

WATCH_ONLY_MESSAGE = (
    "This looks like a private key or seed phrase. This app is watch-only: never paste private keys, "
    "extended private keys or seed phrases anywhere. Enter a public address or an extended public key "
    "(xpub/ypub/zpub) instead."
)
REDACTED = "[redacted]"

MNEMONIC_LENGTHS = (12, 15, 18, 21, 24)
MIN_WORDS = 12
# Hex digit groups joined by at most a few separator characters (spaces, colons, dashes, underscores).
_HEX_RUN = re.compile(r"[0-9A-Fa-f]+(?:[\s:_\-]{1,3}[0-9A-Fa-f]+)*")
_PRV = re.compile(r"[xyztuvXYZTUV]prv[1-9A-HJ-NP-Za-km-z]{20,}")
_B58_RUN = re.compile(r"[1-9A-HJ-NP-Za-km-z]{50,}")
_JSON_BYTES = re.compile(r"\[\s*(?:\d{1,3}\s*,\s*){31}(?:(?:\d{1,3}\s*,\s*){32})?\d{1,3}\s*,?\s*\]")
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}|\+")
_ESCAPE = re.compile(r"\\(?:[nrt]|x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8})")
# Between two words of a phrase: separators, numbering ("1. ", "2)"), quotes and commas of a JSON list.
_MAX_GAP = 8
_MAX_TYPOS_IN_A_ROW = 2


# --------------------------------------------------------------------------- word lists


def _fold(text: str) -> str:
    """Case- and accent-insensitive form (NFKD, combining marks dropped, casefolded)."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).casefold()


@lru_cache(maxsize=1)
def wordlists() -> dict[str, frozenset[str]]:
    """Every official BIP-39 word list, folded, by language (read from the ``mnemonic`` package's data)."""
    out: dict[str, frozenset[str]] = {}
    folder = resources.files("mnemonic") / "wordlist"
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".txt"):
            words = [w.strip() for w in entry.read_text(encoding="utf-8").split("\n") if w.strip()]
            if len(words) == 2048:
                out[entry.name[:-4]] = frozenset(_fold(w) for w in words)
    return out


@lru_cache(maxsize=1)
def bip39_words() -> frozenset[str]:
    """The English BIP-39 word list."""
    return wordlists()["english"]


@lru_cache(maxsize=1)
def _ascii_languages() -> frozenset[str]:
    return frozenset(lang for lang, words in wordlists().items() if all(w.isascii() for w in words))


@lru_cache(maxsize=1)
def _word_lengths() -> dict[str, tuple[int, ...]]:
    return {lang: tuple(sorted({len(w) for w in words})) for lang, words in wordlists().items()}


# --------------------------------------------------------------------------- single detectors


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


def _is_byte_array(text: str) -> bool:
    try:
        data = json.loads(re.sub(r",\s*\]$", "]", text))
    except ValueError:
        return False
    return isinstance(data, list) and len(data) in (32, 64) and all(isinstance(b, int) and 0 <= b <= 255 for b in data)


Span = tuple[int, int, str]


def _hex_spans(text: str) -> list[Span]:
    out = []
    for m in _HEX_RUN.finditer(text):
        if m.end() - m.start() < 64:
            continue
        groups = [(g.start(), g.end()) for g in re.finditer(r"[0-9A-Fa-f]+", m.group(0))]
        digits = sum(b - a for a, b in groups)
        # Short hex-looking words at either end ("pasted 4c08…", "… dead") are not part of the key.
        while len(groups) > 1 and groups[0][1] - groups[0][0] < 8 and digits - (groups[0][1] - groups[0][0]) >= 64:
            digits -= groups[0][1] - groups[0][0]
            groups.pop(0)
        while len(groups) > 1 and groups[-1][1] - groups[-1][0] < 8 and digits - (groups[-1][1] - groups[-1][0]) >= 64:
            digits -= groups[-1][1] - groups[-1][0]
            groups.pop()
        if digits >= 64:
            out.append((m.start() + groups[0][0], m.start() + groups[-1][1], "private key (hex)"))
    return out


def _base58_spans(text: str) -> list[Span]:
    out = []
    for m in _PRV.finditer(text):
        out.append((m.start(), m.end(), "extended private key"))
    for m in _B58_RUN.finditer(text):
        token, start = m.group(0), m.start()
        if _is_solana_secret(token):
            out.append((start, m.end(), "Solana secret key"))
            continue
        # A WIF key may be glued to other base58 letters ("wif5K..."): look at every 51/52-letter window.
        if len(token) <= 400:
            for size in (52, 51):
                for i in range(0, len(token) - size + 1):
                    if token[i] in "5KLc9" and _is_wif(token[i : i + size]):
                        out.append((start + i, start + i + size, "private key (WIF)"))
                        break
    return out


def _json_spans(text: str) -> list[Span]:
    return [(m.start(), m.end(), "Solana secret key") for m in _JSON_BYTES.finditer(text) if _is_byte_array(m.group(0))]


# --------------------------------------------------------------------------- seed phrases


def _folded_with_positions(text: str) -> tuple[str, list[int] | range]:
    """The folded text and, for each of its characters, the index of the original character."""
    if text.isascii():
        return text.lower(), range(len(text))
    chars: list[str] = []
    where: list[int] = []
    for i, c in enumerate(text):
        for f in _fold(c):
            chars.append(f)
            where.append(i)
    return "".join(chars), where


def _phrase_spans(text: str) -> list[Span]:
    folded, where = _folded_with_positions(text)
    tokens = [(m.start(), m.end(), m.group(0)) for m in re.finditer(r"[^\W\d_]+", folded)]
    if not tokens:
        return []
    spans: list[tuple[int, int]] = []
    words_only = [t[2] for t in tokens]
    ascii_text = folded.isascii()
    long_tokens = [t for t in tokens if len(t[2]) >= MIN_WORDS]
    for lang, words in wordlists().items():
        if ascii_text and lang not in _ascii_languages():
            continue  # kana, hangul, han and cyrillic words cannot be in an ASCII text
        if len(tokens) >= MIN_WORDS and sum(map(words.__contains__, words_only)) >= 9:
            spans += _spaced_runs(tokens, folded, words)
        if long_tokens:
            spans += _glued_runs(long_tokens, words, _word_lengths()[lang])
    return [(where[a], where[b - 1] + 1, "seed phrase") for a, b in spans]


def _spaced_runs(tokens, folded: str, words: frozenset[str]) -> list[tuple[int, int]]:
    """Runs of 12+ words separated by short non-letter gaps, most of them in the list (a typo or two may
    slip in, but never 3 unknown words in a row)."""
    out = []
    run: list[tuple[int, int, bool]] = []

    def close() -> None:
        while run and not run[-1][2]:
            run.pop()
        known = sum(1 for t in run if t[2])
        if len(run) >= MIN_WORDS and known >= 9 and known >= 0.75 * len(run):
            out.append((run[0][0], run[-1][1]))
        run.clear()

    misses = 0
    prev_end = None
    for start, end, word in tokens:
        if prev_end is not None and start - prev_end > _MAX_GAP:
            close()
            misses = 0
        hit = word in words
        misses = 0 if hit else misses + 1
        if misses > _MAX_TYPOS_IN_A_ROW:
            close()
            misses = 0
        elif run or hit:
            run.append((start, end, hit))
        prev_end = end
    close()
    return out


def _glued_runs(tokens, words: frozenset[str], lengths: tuple[int, ...]) -> list[tuple[int, int]]:
    """12+ list words written without separators ("abandonabandon…", "的一是在…"): inside one letter run,
    the longest chain of list words ending at each position."""
    out = []
    shortest = lengths[0]
    for start, end, token in tokens:
        # A glued phrase is at most 24 words of at most 8 letters; a longer letter run is looked at in
        # windows, and a blob past 4,000 letters is not a pasted phrase.
        if len(token) < MIN_WORDS * shortest or len(token) > 4000:
            continue
        n = len(token)
        chain = [0] * (n + 1)
        origin = list(range(n + 1))
        for j in range(1, n + 1):
            for size in lengths:
                if size > j:
                    break
                if token[j - size : j] in words:
                    if chain[j - size] + 1 > chain[j]:
                        chain[j] = chain[j - size] + 1
                        origin[j] = origin[j - size]
            if chain[j] >= MIN_WORDS:
                out.append((start + origin[j], start + j))
    return _merge([(a, b, "") for a, b in out], keep_kind=False)


# --------------------------------------------------------------------------- the scanner


def _merge(spans, keep_kind: bool = True):
    merged: list = []
    for a, b, kind in sorted(spans):
        if merged and a <= merged[-1][1]:
            pa, pb, pk = merged[-1]
            merged[-1] = (pa, max(pb, b), pk)
        else:
            merged.append((a, b, kind))
    return merged if keep_kind else [(a, b) for a, b, _ in merged]


def find_secrets(text: str) -> list[Span]:
    """Every secret-looking span in ``text`` as (start, end, kind), merged where they overlap."""
    if not text or len(text) < MIN_WORDS:
        return []
    spans = _hex_spans(text) + _base58_spans(text) + _json_spans(text) + _phrase_spans(text)
    return _merge(spans)


def secret_kind(text: str) -> str | None:
    """The kind of the first secret inside ``text`` (also once URL-decoded), or None."""
    if not text:
        return None
    for candidate in _views(text):
        found = find_secrets(candidate)
        if found:
            return found[0][2]
    return None


def _unescape(text: str) -> str:
    """Backslash escapes undone (Django escapes control and non-ASCII characters of paths it logs)."""
    try:
        return text.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except (UnicodeDecodeError, ValueError):
        return text


def _views(text: str) -> list[str]:
    """The text, and the text decoded when it holds URL encoding (%XX, +) or backslash escapes."""
    out = [text]
    if _PERCENT.search(text):
        out.append(unquote_plus(text))
    if _ESCAPE.search(text):
        out += [_unescape(v) for v in list(out)]
    return out


def refuse_secrets(text: str) -> None:
    """Raise ``SecretRefused`` (whose message never contains ``text``) if ``text`` holds a secret."""
    kind = secret_kind(text)
    if kind:
        raise SecretRefused(f"{WATCH_ONLY_MESSAGE} (detected: {kind})", permanent=True)


def _redact(text: str) -> str:
    spans = find_secrets(text)
    if not spans:
        return text
    out, last = [], 0
    for a, b, _ in spans:
        out.append(text[last:a])
        out.append(REDACTED)
        last = b
    out.append(text[last:])
    return "".join(out)


def redact_secrets(text: str) -> str:
    """``text`` with every secret-looking span replaced by ``[redacted]``. A URL-encoded or backslash-escaped
    secret (a query string in an access log, a path in Django's "Not Found" line) is found too: then the line
    is shown decoded, with the secret redacted."""
    if not text:
        return text
    out = _redact(text)
    for decoded in _views(out)[1:]:
        if find_secrets(decoded):
            return _redact(decoded)
    return out
