"""Parse and encode Bitcoin addresses and extended public keys (offline; refuses extended private keys)."""

from __future__ import annotations

from dataclasses import dataclass

from chains.base import InvalidAddress, ParsedAddress, SecretRefused
from chains.bitcoin.codec import CodecError, b58decode_check, bech32_decode, b58encode_check, decode_segwit, encode_segwit, hash160, taproot_output_key

SCRIPT_TYPES = ("p2pkh", "p2sh-p2wpkh", "p2wpkh", "p2tr")  # what an extended key can be scanned as


@dataclass(frozen=True)
class NetParams:
    """Address prefixes of one network (Core's, including ``bcrt`` on regtest)."""

    name: str
    hrp: str
    p2pkh: int
    p2sh: int


NETWORKS = {
    "mainnet": NetParams("mainnet", "bc", 0x00, 0x05),
    "testnet": NetParams("testnet", "tb", 0x6F, 0xC4),
    "signet": NetParams("signet", "tb", 0x6F, 0xC4),
    "regtest": NetParams("regtest", "bcrt", 0x6F, 0xC4),
}

_HRP_NETWORKS = {"bc": ("mainnet",), "tb": ("testnet",), "bcrt": ("regtest",)}
_B58_NETWORKS = {
    0x00: (("mainnet",), "p2pkh"),
    0x05: (("mainnet",), "p2sh"),
    0x6F: (("testnet", "regtest"), "p2pkh"),
    0xC4: (("testnet", "regtest"), "p2sh"),
}

# version bytes -> (prefix, networks, implied script type); SLIP-132
EXTENDED_PUBLIC = {
    bytes.fromhex("0488b21e"): ("xpub", ("mainnet",), "p2pkh"),
    bytes.fromhex("049d7cb2"): ("ypub", ("mainnet",), "p2sh-p2wpkh"),
    bytes.fromhex("04b24746"): ("zpub", ("mainnet",), "p2wpkh"),
    bytes.fromhex("043587cf"): ("tpub", ("testnet", "regtest"), "p2pkh"),
    bytes.fromhex("044a5262"): ("upub", ("testnet", "regtest"), "p2sh-p2wpkh"),
    bytes.fromhex("045f1cf6"): ("vpub", ("testnet", "regtest"), "p2wpkh"),
}
EXTENDED_PRIVATE = {
    bytes.fromhex(h)
    for h in ("0488ade4", "049d7878", "04b2430c", "04358394", "044a4e28", "045f18bc", "0295b005", "02aa7a99")
}
_PRIVATE_PREFIXES = ("xprv", "yprv", "zprv", "tprv", "uprv", "vprv", "Yprv", "Zprv", "Uprv", "Vprv")
_MULTISIG_PUBLIC = {bytes.fromhex(h) for h in ("0295b43f", "02aa7ed3", "024289ef", "02575483")}

_SECRET_MESSAGE = (
    "this is an extended PRIVATE key: it was not stored or used. Enter the matching extended public key "
    "(xpub/ypub/zpub, or tpub/upub/vpub on testnet and regtest) instead"
)


def parse_address(text: str) -> ParsedAddress:
    """Validate a Bitcoin address or extended public key and return its canonical form.

    Raises ``SecretRefused`` for an extended private key (the message never contains it) and
    ``InvalidAddress`` for anything else that is not valid (wrong checksum, unknown prefix, bech32
    used where bech32m is required or the reverse, wrong length).
    """
    text = (text or "").strip()
    if not text:
        raise InvalidAddress("empty address")
    if text.startswith(_PRIVATE_PREFIXES):
        raise SecretRefused(_SECRET_MESSAGE)
    lowered = text.lower()
    for hrp in ("bcrt", "bc", "tb"):
        if lowered.startswith(hrp + "1"):
            return _parse_segwit(text)
    if text[:4] in ("xpub", "ypub", "zpub", "tpub", "upub", "vpub", "Ypub", "Zpub", "Upub", "Vpub") or len(text) > 100:
        return parse_extended_key(text)
    return _parse_base58(text)


def _parse_segwit(text: str) -> ParsedAddress:
    try:
        hrp, version, program = decode_segwit(text)
    except CodecError as exc:
        raise InvalidAddress(f"invalid bech32 address: {exc}") from None
    networks = _HRP_NETWORKS.get(hrp)
    if networks is None:
        raise InvalidAddress("unknown bech32 prefix (expected bc1, tb1 or bcrt1)")
    if version == 0:
        script_type = "p2wpkh" if len(program) == 20 else "p2wsh"
    elif version == 1 and len(program) == 32:
        script_type = "p2tr"
    else:
        raise InvalidAddress(f"unsupported witness version {version}")
    return ParsedAddress(address=text.lower(), kind="address", networks=networks, script_type=script_type)


def _parse_base58(text: str) -> ParsedAddress:
    try:
        payload = b58decode_check(text)
    except CodecError as exc:
        try:
            bech32_decode(text)
        except CodecError:
            raise InvalidAddress(f"invalid address: {exc}") from None
        raise InvalidAddress("unknown bech32 prefix (expected bc1, tb1 or bcrt1)") from None
    if len(payload) != 21:
        raise InvalidAddress("invalid address: wrong length")
    found = _B58_NETWORKS.get(payload[0])
    if found is None:
        raise InvalidAddress("invalid address: unknown version prefix")
    networks, script_type = found
    return ParsedAddress(address=text, kind="address", networks=networks, script_type=script_type)


def decode_extended_key(text: str) -> tuple[bytes, bytes]:
    """Check an extended public key: ``(version, 78-byte payload)``.

    Raises ``SecretRefused`` for a private one and ``InvalidAddress`` otherwise."""
    if text.startswith(_PRIVATE_PREFIXES):
        raise SecretRefused(_SECRET_MESSAGE)
    try:
        payload = b58decode_check(text)
    except CodecError as exc:
        raise InvalidAddress(f"invalid extended key: {exc}") from None
    if len(payload) != 78:
        raise InvalidAddress("invalid extended key: wrong length")
    version = payload[:4]
    if version in EXTENDED_PRIVATE or payload[45] == 0:
        raise SecretRefused(_SECRET_MESSAGE)
    if version in _MULTISIG_PUBLIC:
        raise InvalidAddress("multisig extended keys (Ypub/Zpub/Upub/Vpub) are not supported")
    if version not in EXTENDED_PUBLIC:
        raise InvalidAddress("invalid extended key: unknown version prefix")
    if payload[45] not in (2, 3):
        raise InvalidAddress("invalid extended key: not a compressed public key")
    return version, payload


def account_identity(text: str, script_type: str | None = None) -> str:
    """What makes two extended public keys the same account whatever their encoding (xpub/ypub/zpub,
    tpub/upub/vpub): the key and chain code, with the script type its addresses are derived for (the
    wallet's explicit one, else the one the prefix implies). Raises like ``decode_extended_key``."""
    version, payload = decode_extended_key(text)
    return f"{payload[13:].hex()}:{script_type or EXTENDED_PUBLIC[version][2]}"


def parse_extended_key(text: str) -> ParsedAddress:
    """Validate an x/y/z/t/u/vpub. Raises ``SecretRefused`` or ``InvalidAddress``."""
    version, _ = decode_extended_key(text)
    _, networks, script_type = EXTENDED_PUBLIC[version]
    return ParsedAddress(address=text, kind="extended_key", networks=networks, script_type=script_type)


def encode_address(pubkey: bytes, script_type: str, network: str) -> str:
    """The address paying to a compressed public key with ``script_type`` on ``network``.

    Raises ``InvalidAddress`` for an unknown script type or network."""
    params = NETWORKS.get(network)
    if params is None:
        raise InvalidAddress(f"unknown bitcoin network {network!r}")
    if script_type == "p2pkh":
        return b58encode_check(bytes([params.p2pkh]) + hash160(pubkey))
    if script_type == "p2sh-p2wpkh":
        redeem = b"\x00\x14" + hash160(pubkey)
        return b58encode_check(bytes([params.p2sh]) + hash160(redeem))
    if script_type == "p2wpkh":
        return encode_segwit(params.hrp, 0, hash160(pubkey))
    if script_type == "p2tr":
        return encode_segwit(params.hrp, 1, taproot_output_key(pubkey))
    raise InvalidAddress(f"unsupported script type {script_type!r} (use one of {', '.join(SCRIPT_TYPES)})")
