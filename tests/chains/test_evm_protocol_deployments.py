"""The seeded mainnet protocol addresses: every one a checksummed address every protocol module accepts."""

from __future__ import annotations

import pytest

from chains.evm.address import to_checksum
from chains.evm.protocols import PROTOCOLS
from chains.evm.protocols.deployments import DEPLOYMENTS, deployments_for


@pytest.mark.parametrize("chain_id", sorted(DEPLOYMENTS))
def test_every_deployment_is_a_checksummed_address_its_module_accepts(chain_id):
    for name, roles in deployments_for(chain_id).items():
        PROTOCOLS[name](roles)  # raises ValueError on a missing role or a malformed address
        for role, value in roles.items():
            for address in value if isinstance(value, list) else [value]:
                assert address == to_checksum(address), (chain_id, name, role)


def test_the_five_chains_have_uniswap_and_aave():
    assert set(DEPLOYMENTS) == {1, 10, 137, 8453, 42161}
    assert all({"uniswap_v2", "uniswap_v3", "aave_v3"} <= set(p) for p in DEPLOYMENTS.values())
    assert deployments_for(31337) == {}
