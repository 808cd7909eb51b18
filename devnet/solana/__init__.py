"""Local Solana cluster: the LiteSVM JSON-RPC server with the demo scenario. The uniform devnet
interface that ``devnet.run`` and the tests use: ``DEFAULT_PORT``, ``start(port)``, ``run_scenario(node)``."""

DEFAULT_PORT = 8899


def start(port: int | None = None):
    from devnet.solana.node import start_solana

    return start_solana(port)


def run_scenario(node) -> dict:
    from devnet.solana import scenario

    return scenario.run_scenario(node.url)
