"""Start and stop a bcoin regtest node (in memory, indexes on, loopback) through bcoin_node.js."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from devnet.common import NODE_MODULES, NodeProcess, free_port, wait_until

LAUNCHER = Path(__file__).resolve().parent / "bcoin_node.js"


class BcoinNode(NodeProcess):
    """A running bcoin node: ``url`` is the node HTTP API, ``wallet_url`` the wallet HTTP API (used
    only by the scenario to sign; the app never talks to it)."""

    grace_s = 10.0

    def __init__(self, process: subprocess.Popen, port: int, wallet_port: int) -> None:
        self.process = process
        self.port, self.wallet_port = port, wallet_port
        self.url = f"http://127.0.0.1:{port}"
        self.wallet_url = f"http://127.0.0.1:{wallet_port}"
        self._stderr: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        for line in self.process.stderr or ():
            self._stderr.append(line)
            del self._stderr[:-50]

    def rpc(self, method: str, params: list | None = None):
        """One node JSON-RPC call (bcoin serves it on the HTTP API root). Raises ``RuntimeError``."""
        reply = httpx.post(self.url, json={"method": method, "params": params or []}, timeout=120).json()
        if reply.get("error"):
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def height(self) -> int:
        return httpx.get(self.url + "/", timeout=10).json()["chain"]["height"]


def start_bcoin(port: int | None = None, *, wallet_port: int | None = None, timeout_s: float = 60.0) -> BcoinNode:
    """Start bcoin on ``port`` (a free one if None) and wait until its HTTP API answers.

    Raises ``RuntimeError`` when node or bcoin is missing or the node exits, ``TimeoutError`` when it
    does not answer in time."""
    node_bin = shutil.which("node")
    if node_bin is None:
        raise RuntimeError("node (Node.js) is not on PATH")
    if not (NODE_MODULES / "bcoin").is_dir():
        raise RuntimeError(f"bcoin is not installed in {NODE_MODULES} (cd devnet && npm install)")
    port = port or free_port()
    wallet_port = wallet_port or free_port()
    process = subprocess.Popen(
        [node_bin, str(LAUNCHER), str(port), str(wallet_port)],
        stdin=subprocess.PIPE,  # closes when we exit: the launcher stops with us
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    node = BcoinNode(process, port, wallet_port)
    from devnet.bitcoin.scenario import WALLET_URLS

    WALLET_URLS[node.url] = node.wallet_url

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError("exited")
        return httpx.get(node.url + "/", timeout=2).status_code == 200

    try:
        wait_until(ready, timeout_s=timeout_s, interval_s=0.1, what="bcoin")
    except (TimeoutError, RuntimeError) as exc:
        node.stop()
        raise RuntimeError(f"bcoin did not start: {exc}; stderr: {''.join(node._stderr)[-2000:]}") from None
    return node


def main() -> None:
    """Foreground use: ``python -m devnet.bitcoin.node [port]``; Ctrl-C stops it."""
    port = int(sys.argv[1]) if len(sys.argv) > 1 else None
    with start_bcoin(port) as node:
        print(json.dumps({"url": node.url, "wallet_url": node.wallet_url}), flush=True)
        try:
            node.process.wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
