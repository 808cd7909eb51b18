"""Writes tests/data/secret_corpus.json: secret-shaped strings (made from fixed, worthless keys) that every
free-text field must refuse and no log, response, page or database row may ever hold.

Run: .venv/bin/python -m tests.data.make_secret_corpus
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mnemonic import Mnemonic

from chains.base58 import b58encode
from chains.bitcoin.codec import b58encode_check

KEY = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
CHAIN_CODE = bytes.fromhex("873dff81c02f525623fd1fe5167eac3a55a049de3d314bb42ee227ffed37d508")
ENTROPY_16 = hashlib.sha256(b"chainfolio corpus 12").digest()[:16]
ENTROPY_32 = hashlib.sha256(b"chainfolio corpus 24").digest()
SOLANA = bytes(range(7, 71))


def xprv(version: str) -> str:
    return b58encode_check(bytes.fromhex(version) + b"\x00" * 9 + CHAIN_CODE + b"\x00" + KEY)


def phrase(lang: str, entropy: bytes = ENTROPY_16) -> str:
    return Mnemonic(lang).to_mnemonic(entropy)


def main() -> None:
    h = KEY.hex()
    wif = b58encode_check(b"\x80" + KEY + b"\x01")
    en12, en24 = phrase("english"), phrase("english", ENTROPY_32)
    words = en12.split()
    corpus = {
        # hex keys
        "hex": h,
        "hex 0x": "0x" + h,
        "hex upper": h.upper(),
        "hex 0X upper": "0X" + h.upper(),
        "hex groups of 8": " ".join(h[i : i + 8] for i in range(0, 64, 8)),
        "hex pairs with colons": ":".join(h[i : i + 2] for i in range(0, 64, 2)),
        "hex groups of 4 with dashes": "-".join(h[i : i + 4] for i in range(0, 64, 4)),
        "hex groups with underscores": "_".join(h[i : i + 16] for i in range(0, 64, 16)),
        "hex two lines": h[:32] + "\n" + h[32:],
        "key=hex": "key=" + h,
        "pk:hex": "pk:" + h,
        "privkey=0x hex;": "privkey=0x" + h + ";",
        "hex then full stop": h + ".",
        "hex then bang": "0x" + h + "!",
        "hex in brackets": "(" + h + ")",
        "hex in quotes": '"' + h + '"',
        "hex in a sentence": "my key is " + h + " keep it safe",
        "hex after a label": "Savings pasted " + "0x" + h,
        # WIF
        "WIF compressed": wif,
        "WIF uncompressed": b58encode_check(b"\x80" + KEY),
        "WIF testnet": b58encode_check(b"\xef" + KEY + b"\x01"),
        "WIF with full stop": wif + ".",
        "WIF in brackets with bang": "(" + wif + ")!",
        "wif: WIF": "wif:" + wif,
        "WIF in a sentence": "backup " + wif + ", do not share",
        # extended private keys
        "xprv": xprv("0488ade4"),
        "yprv": xprv("049d7878"),
        "zprv": xprv("04b2430c"),
        "tprv": xprv("04358394"),
        "xprv with full stop": xprv("0488ade4") + ".",
        "xprv in brackets": "[" + xprv("0488ade4") + "]",
        "xprv labelled": "xprv: " + xprv("0488ade4") + "!",
        # Solana
        "Solana keypair base58": b58encode(SOLANA),
        "Solana keypair base58 labelled": "sk=" + b58encode(SOLANA) + ".",
        "Solana keypair JSON": json.dumps(list(SOLANA)),
        "Solana keypair JSON compact": json.dumps(list(SOLANA), separators=(",", ":")),
        "Solana keypair JSON lines": "[\n" + ",\n".join(str(b) for b in SOLANA) + "\n]",
        "Solana keypair JSON in text": "id.json: " + json.dumps(list(SOLANA)) + " done",
        "Solana seed JSON": json.dumps(list(SOLANA[:32])),
        # BIP-39, English
        "BIP-39 12": en12,
        "BIP-39 24": en24,
        "BIP-39 upper": en12.upper(),
        "BIP-39 title case": en12.title(),
        "BIP-39 no separators": "".join(words),
        "BIP-39 no separators upper": "".join(words).upper(),
        "BIP-39 commas": ",".join(words),
        "BIP-39 dashes": "-".join(words),
        "BIP-39 newlines": "\n".join(words),
        "BIP-39 numbered": " ".join(f"{i + 1}. {w}" for i, w in enumerate(en24.split())),
        "BIP-39 JSON list": json.dumps(words),
        "BIP-39 in a sentence": "seed: " + en12 + " (paper backup)",
        "BIP-39 with a typo": " ".join(words[:5] + [words[5][:-1] + "q"] + words[6:]),
        # BIP-39, the other official word lists
        "BIP-39 Chinese simplified": phrase("chinese_simplified"),
        "BIP-39 Chinese simplified no spaces": phrase("chinese_simplified").replace(" ", ""),
        "BIP-39 Chinese traditional": phrase("chinese_traditional", ENTROPY_32),
        "BIP-39 Japanese": phrase("japanese"),
        "BIP-39 Japanese no spaces": phrase("japanese").replace("\u3000", ""),
        "BIP-39 Korean": phrase("korean"),
        "BIP-39 French": phrase("french"),
        "BIP-39 French without accents": Mnemonic.normalize_string(phrase("french")).encode("ascii", "ignore").decode(),
        "BIP-39 Spanish": phrase("spanish"),
        "BIP-39 Italian": phrase("italian", ENTROPY_32),
        "BIP-39 Czech": phrase("czech"),
        "BIP-39 Portuguese": phrase("portuguese"),
        "BIP-39 Portuguese upper": phrase("portuguese").upper(),
    }
    out = Path(__file__).with_name("secret_corpus.json")
    out.write_text(json.dumps(corpus, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{len(corpus)} strings -> {out}")


if __name__ == "__main__":
    main()
