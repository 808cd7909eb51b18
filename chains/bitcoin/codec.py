"""Base58Check, bech32/bech32m (BIP-173/350) and the Bitcoin script encodings of a public key."""

from __future__ import annotations

import hashlib

from chains.base58 import b58decode, b58encode

BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
BECH32_CONST = 1
BECH32M_CONST = 0x2BC830A3


class CodecError(ValueError):
    """Text that does not decode; the message says why and never repeats the text."""


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def hash160(data: bytes) -> bytes:
    return hashlib.new("ripemd160", sha256(data)).digest()


# --------------------------------------------------------------------------- base58check


def b58decode_check(text: str) -> bytes:
    """Decode Base58Check; raises ``CodecError`` on a bad character or a wrong checksum."""
    try:
        raw = b58decode(text)
    except ValueError:
        raise CodecError("invalid base58 character") from None
    if len(raw) < 5:
        raise CodecError("too short")
    payload, checksum = raw[:-4], raw[-4:]
    if sha256(sha256(payload))[:4] != checksum:
        raise CodecError("wrong checksum")
    return payload


def b58encode_check(payload: bytes) -> str:
    return b58encode(payload + sha256(sha256(payload))[:4])


# --------------------------------------------------------------------------- bech32 / bech32m


def _polymod(values: list[int]) -> int:
    gen = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if ((top >> i) & 1) else 0
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convertbits(data: bytes | list[int], frombits: int, tobits: int, pad: bool) -> list[int]:
    acc = bits = 0
    out: list[int] = []
    maxv = (1 << tobits) - 1
    for value in data:
        if value < 0 or value >> frombits:
            raise CodecError("invalid data value")
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (tobits - bits)) & maxv)
    elif bits >= frombits or ((acc << (tobits - bits)) & maxv):
        raise CodecError("invalid padding")
    return out


def bech32_decode(text: str) -> tuple[str, list[int], int]:
    """Split and checksum-verify a bech32 or bech32m string: ``(hrp, data, const)``.

    Raises ``CodecError`` (mixed case, bad character, wrong checksum, bad length)."""
    if text.lower() != text and text.upper() != text:
        raise CodecError("mixed upper and lower case")
    text = text.lower()
    pos = text.rfind("1")
    if pos < 1 or pos + 7 > len(text) or len(text) > 90:
        raise CodecError("bad bech32 structure or length")
    if any(ord(c) < 33 or ord(c) > 126 for c in text):
        raise CodecError("invalid character")
    hrp, rest = text[:pos], text[pos + 1 :]
    data = []
    for c in rest:
        idx = BECH32_CHARSET.find(c)
        if idx < 0:
            raise CodecError("invalid bech32 character")
        data.append(idx)
    const = _polymod(_hrp_expand(hrp) + data)
    if const not in (BECH32_CONST, BECH32M_CONST):
        raise CodecError("wrong checksum")
    return hrp, data[:-6], const


def decode_segwit(text: str) -> tuple[str, int, bytes]:
    """Decode a segwit address to ``(hrp, witness version, program)``; enforces BIP-350 (v0 uses
    bech32, v1+ bech32m). Raises ``CodecError``."""
    hrp, data, const = bech32_decode(text)
    if not data:
        raise CodecError("empty data")
    version = data[0]
    if version > 16:
        raise CodecError("invalid witness version")
    program = bytes(_convertbits(data[1:], 5, 8, False))
    if not 2 <= len(program) <= 40:
        raise CodecError("invalid witness program length")
    if version == 0 and len(program) not in (20, 32):
        raise CodecError("invalid witness v0 program length")
    if version == 0 and const != BECH32_CONST:
        raise CodecError("witness v0 address must use bech32, not bech32m")
    if version != 0 and const != BECH32M_CONST:
        raise CodecError(f"witness v{version} address must use bech32m, not bech32")
    return hrp, version, program


def encode_segwit(hrp: str, version: int, program: bytes, *, legacy_bech32: bool = False) -> str:
    """Encode a segwit address; ``legacy_bech32`` uses BIP-173 bech32 for every version, as
    pre-BIP-350 software (bcoin 1.0.2) does for witness v1+."""
    data = [version] + _convertbits(program, 8, 5, True)
    const = BECH32_CONST if version == 0 or legacy_bech32 else BECH32M_CONST
    polymod = _polymod(_hrp_expand(hrp) + data + [0] * 6) ^ const
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(BECH32_CHARSET[d] for d in data + checksum)


# --------------------------------------------------------------------------- taproot (BIP-86 key-path only)

_P = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_G = (
    0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
    0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8,
)


def _point_add(p1, p2):
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    if p1[0] == p2[0] and p1[1] != p2[1]:
        return None
    if p1 == p2:
        lam = 3 * p1[0] * p1[0] * pow(2 * p1[1], _P - 2, _P) % _P
    else:
        lam = (p2[1] - p1[1]) * pow(p2[0] - p1[0], _P - 2, _P) % _P
    x3 = (lam * lam - p1[0] - p2[0]) % _P
    return (x3, (lam * (p1[0] - x3) - p1[1]) % _P)


def _point_mul(point, n: int):
    result = None
    for i in range(256):
        if (n >> i) & 1:
            result = _point_add(result, point)
        point = _point_add(point, point)
    return result


def _lift_x(x: int):
    y_sq = (pow(x, 3, _P) + 7) % _P
    y = pow(y_sq, (_P + 1) // 4, _P)
    if pow(y, 2, _P) != y_sq:
        raise CodecError("not a curve point")
    return (x, y if y % 2 == 0 else _P - y)


def taproot_output_key(compressed_pubkey: bytes) -> bytes:
    """BIP-86: the x-only output key of a key-path-only taproot output for an internal key."""
    internal = _lift_x(int.from_bytes(compressed_pubkey[1:33], "big"))
    xonly = internal[0].to_bytes(32, "big")
    tag = sha256(b"TapTweak")
    tweak = int.from_bytes(sha256(tag + tag + xonly), "big")
    if tweak >= _N:
        raise CodecError("taproot tweak out of range")
    output = _point_add(internal, _point_mul(_G, tweak))
    return output[0].to_bytes(32, "big")
