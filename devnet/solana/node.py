"""Start and stop the LiteSVM JSON-RPC server: as a subprocess (like a real node) or in a thread."""

from __future__ import annotations

import subprocess
import sys
import threading
from typing import Any

from devnet.common import ROOT, NodeProcess, rpc, wait_until


class SolanaNode(NodeProcess):
    """A running devnet server: ``.url``, ``.stop()``, and a context manager that stops it."""

    def __init__(self, url: str, *, process: subprocess.Popen | None = None, server: Any = None, thread: threading.Thread | None = None) -> None:
        self.url = url
        self.process, self._server, self._thread = process, server, thread

    def _after_stop(self) -> None:
        if self.process is not None and self.process.stdout:
            self.process.stdout.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def start_solana(port: int | None = None, *, in_process: bool = False, timeout_s: float = 30.0) -> SolanaNode:
    """Start the server on 127.0.0.1 (``port`` None: a free port) and wait until it answers getHealth.

    By default it runs as ``python -m devnet.solana.server`` in a subprocess; ``in_process=True`` runs
    it in a daemon thread of this process. Raises ``TimeoutError`` if it does not come up,
    ``RuntimeError`` if the subprocess exits early.
    """
    if in_process:
        from devnet.solana.server import SolanaRpcServer

        server = SolanaRpcServer("127.0.0.1", port or 0)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True, name="solana-devnet")
        thread.start()
        node = SolanaNode(server.url, server=server, thread=thread)
    else:
        process = subprocess.Popen(
            [sys.executable, "-m", "devnet.solana.server", "--port", str(port or 0)],
            cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        line = process.stdout.readline() if process.stdout else ""
        if not line.startswith("listening on "):
            process.kill()
            process.wait()
            raise RuntimeError(f"solana devnet server did not start (exit code {process.returncode})")
        node = SolanaNode(line.split("listening on ", 1)[1].strip(), process=process)
    try:
        wait_until(lambda: rpc(node.url, "getHealth") == "ok", timeout_s=timeout_s, what="solana devnet")
    except BaseException:
        node.stop()
        raise
    return node
