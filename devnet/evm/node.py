"""Start a local anvil node (chain id 31337) with our Multicall3-compatible contract at the canonical address."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devnet.common import NODE_MODULES, NodeProcess, free_port, rpc, wait_until, write_state

ANVIL = NODE_MODULES / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHAIN_ID = 31337
MULTICALL3_ADDRESS = "0xcA11bde05977b3631167028862bE2a173976CA11"


def artifact(name: str) -> dict[str, Any]:
    """The committed compiled artifact ``{abi, bytecode, deployedBytecode}`` of contract ``name``."""
    return json.loads((ARTIFACTS / f"{name}.json").read_text())


@dataclass
class AnvilNode(NodeProcess):
    """A running anvil process; ``stop()`` (or leaving the ``with`` block) terminates it."""

    url: str
    port: int
    process: subprocess.Popen = field(repr=False)


def install_multicall3(url: str) -> None:
    """Put our Multicall3-compatible runtime code at the canonical address (anvil_setCode)."""
    rpc(url, "anvil_setCode", [MULTICALL3_ADDRESS, artifact("Multicall3")["deployedBytecode"]])


def start_anvil(port: int | None = None, *, extra_args: tuple[str, ...] = (), timeout_s: float = 20.0) -> AnvilNode:
    """Start anvil on 127.0.0.1:``port`` (a free port when None) and wait until it answers.

    ``extra_args`` go to anvil as is (e.g. ``("--gas-limit", "300000000")`` for big benchmark calls).
    Raises ``FileNotFoundError`` when the anvil binary is missing, ``TimeoutError`` when it does not
    answer within ``timeout_s``, ``RuntimeError`` when it exits at once.
    """
    if not ANVIL.exists():
        raise FileNotFoundError(f"anvil binary not found at {ANVIL} (npm install in devnet/)")
    port = port or free_port()
    cmd = [str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--chain-id", str(CHAIN_ID), "--silent", *extra_args]
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    node = AnvilNode(url=f"http://127.0.0.1:{port}", port=port, process=process)
    try:
        def ready() -> bool:
            if process.poll() is not None:
                err = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise RuntimeError(f"anvil exited with {process.returncode}: {err[-500:]}")
            return int(rpc(node.url, "eth_chainId", timeout_s=2), 16) == CHAIN_ID

        wait_until(ready, timeout_s=timeout_s, what="anvil")
        install_multicall3(node.url)
    except BaseException:
        node.stop()
        raise
    return node


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8545)
    parser.add_argument("--scenario", action="store_true", help="also run devnet.evm.scenario and print its JSON")
    parser.add_argument("--write-state", action="store_true", help="with --scenario: save it as the 'evm' section of var/devnet.json")
    args = parser.parse_args(argv)
    node = start_anvil(args.port)
    print(f"anvil running at {node.url} (chain id {CHAIN_ID}); Multicall3 at {MULTICALL3_ADDRESS}", flush=True)
    if args.scenario:
        from devnet.evm.scenario import run_scenario

        scenario = run_scenario(node.url)
        print(json.dumps(scenario, indent=2), flush=True)
        if args.write_state:
            write_state("evm", scenario)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while node.process.poll() is None:
            time.sleep(0.5)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
