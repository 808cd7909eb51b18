"""Local EVM chain: anvil (chain id 31337) with Multicall3 and the demo scenario. The uniform devnet
interface that ``devnet.run`` and the tests use: ``DEFAULT_PORT``, ``start(port)``, ``run_scenario(node)``."""

DEFAULT_PORT = 8545


def start(port: int | None = None):
    from devnet.evm.node import start_anvil

    return start_anvil(port)


def run_scenario(node) -> dict:
    from devnet.evm import scenario

    return scenario.run_scenario_cached(node.url)  # cached chain state: the protocols deploy once
