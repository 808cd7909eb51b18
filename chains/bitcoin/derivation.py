"""Watch-only BIP-32 derivation of receive (0/i) and change (1/i) addresses from an extended public key."""

from __future__ import annotations

from functools import lru_cache

from chains.base import InvalidAddress
from chains.bitcoin.address import EXTENDED_PUBLIC, SCRIPT_TYPES, decode_extended_key, encode_address
from chains.bitcoin.codec import b58encode_check

RECEIVE, CHANGE = 0, 1
_XPUB_VERSION = bytes.fromhex("0488b21e")


class AccountKey:
    """An account-level extended public key (``m/purpose'/coin'/account'``) ready to derive addresses.

    ``script_type`` overrides the one implied by the prefix (e.g. an xpub exported for a segwit
    account); ``network`` picks the address prefixes (``bcrt1`` on regtest).
    """

    def __init__(self, extended_key: str, network: str, script_type: str | None = None) -> None:
        """Raises ``SecretRefused`` for a private key, ``InvalidAddress`` for a bad key, an unknown
        script type, or a key of another network (e.g. a zpub on regtest)."""
        version, payload = decode_extended_key(extended_key)
        prefix, networks, implied = EXTENDED_PUBLIC[version]
        if network not in networks and not (network == "signet" and "testnet" in networks):
            raise InvalidAddress(f"a {prefix} key is for {'/'.join(networks)}, not {network}")
        self.script_type = script_type or implied
        if self.script_type not in SCRIPT_TYPES:
            raise InvalidAddress(f"unsupported script type {self.script_type!r} (use one of {', '.join(SCRIPT_TYPES)})")
        self.network = network
        from chains.bitcoin.bcl import hdkey_class

        # bitcoinlib only does the EC maths: give it the neutral xpub form, encode addresses ourselves.
        self._key = hdkey_class()(b58encode_check(_XPUB_VERSION + payload[4:]), network="bitcoin")
        self._branches: dict[int, object] = {}
        self._addresses: dict[tuple[int, int], str] = {}  # EC maths costs ~1-4 ms per child: derive once per process

    def _branch(self, branch: int):
        if branch not in self._branches:
            self._branches[branch] = self._key.child_public(branch)
        return self._branches[branch]

    def address(self, branch: int, index: int) -> str:
        """The address at ``branch/index`` (branch 0 = receive, 1 = change)."""
        address = self._addresses.get((branch, index))
        if address is None:
            pub = self._branch(branch).child_public(index).public_byte
            address = self._addresses[(branch, index)] = encode_address(pub, self.script_type, self.network)
        return address

    def addresses(self, branch: int, start: int, stop: int) -> list[str]:
        """Addresses ``branch/start`` .. ``branch/stop-1``."""
        return [self.address(branch, i) for i in range(start, stop)]


@lru_cache(maxsize=64)
def account_key(extended_key: str, network: str, script_type: str | None = None) -> AccountKey:
    """Cached ``AccountKey`` (deriving the branch keys once per process)."""
    return AccountKey(extended_key, network, script_type)
