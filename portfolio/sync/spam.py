"""Spam heuristics for tokens a sync discovers: URLs, bait words, invisible characters, homoglyphs."""

from __future__ import annotations

import re
import unicodedata

_URLISH = re.compile(r"(?i)(https?://|www\.|\b[a-z0-9-]+\.(com|io|org|net|xyz|app|site|top|finance|fi|co|me|gift|link|pro|vip|club|info)\b|t\.me/)")
_BAIT = re.compile(r"(?i)\b(claim|visit|reward|rewards|airdrop|voucher|bonus|free)\b")
_INVISIBLE = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u202e", "\u202d"}


def spam_reason(symbol: str, name: str) -> str:
    """Why a discovered token looks like spam ("" when it does not): URLs or bait words in its name,
    invisible characters, or letters from another script posing as Latin (homoglyphs)."""
    text = f"{symbol} {name}"
    if _URLISH.search(text):
        return "name or symbol contains a web address"
    if _BAIT.search(text):
        return "name or symbol contains bait words (claim, visit, reward, airdrop...)"
    if any(ch in _INVISIBLE or unicodedata.category(ch) == "Cf" for ch in text):
        return "name or symbol contains invisible characters"
    scripts = set()
    for ch in text:
        if ch.isalpha():
            script = unicodedata.name(ch, "UNKNOWN").split(" ")[0]
            scripts.add(script)
    if "LATIN" in scripts and scripts & {"CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE", "FULLWIDTH", "MATHEMATICAL"}:
        return "name or symbol mixes Latin with look-alike letters (homoglyphs)"
    if scripts & {"FULLWIDTH", "MATHEMATICAL"}:
        return "name or symbol uses look-alike letters (homoglyphs)"
    return ""
