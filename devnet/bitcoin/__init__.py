"""Local Bitcoin chain: bcoin regtest with the demo scenario. The uniform devnet interface that
``devnet.run`` and the tests use: ``DEFAULT_PORT``, ``start(port)``, ``run_scenario(node)``."""

DEFAULT_PORT = 18443


def start(port: int | None = None):
    from devnet.bitcoin.node import start_bcoin

    return start_bcoin(port)


def run_scenario(node) -> dict:
    from devnet.bitcoin import scenario

    return scenario.run_scenario(node.url, wallet_url=node.wallet_url)
