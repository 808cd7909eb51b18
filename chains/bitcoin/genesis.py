"""Genesis block hashes per Bitcoin network: the identity an endpoint must show before it is trusted."""

from __future__ import annotations

from chains.base import EndpointConfig
from chains.endpoints import EndpointBroken

GENESIS = {
    "mainnet": "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
    "testnet": "000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943",
    "testnet4": "00000000da84f2bafbbc53dee25a72ae507ff4914b867c565be350b0da8bf043",
    "signet": "00000008819873e925422c1ff0f99f7cc9bbb232af63a077a480a3633bee1ef6",
    "regtest": "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206",
}


def check_genesis(network: str, endpoint: EndpointConfig, answered: object) -> None:
    """Raise ``EndpointBroken`` unless ``answered`` is ``network``'s genesis hash (a network we do not
    know is not checked)."""
    expected = GENESIS.get(network)
    if expected is None:
        return
    if not isinstance(answered, str) or answered.strip().lower() != expected:
        shown = str(answered)[:64] if isinstance(answered, str) else type(answered).__name__
        raise EndpointBroken(f"endpoint's genesis block is {shown}, not {network}'s", endpoint=endpoint.url, method="genesis")
