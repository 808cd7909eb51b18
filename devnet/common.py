"""Small helpers shared by the devnet launchers: free ports, waiting for a node, paths."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from functools import partial
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
DEVNET = ROOT / "devnet"
NODE_MODULES = DEVNET / "node_modules"
VAR = ROOT / "var"
STATE_FILE = VAR / "devnet.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, *, timeout_s: float = 30.0, interval_s: float = 0.05, what: str = "service") -> Any:
    """Call ``check()`` until it returns a truthy value (exceptions count as not yet)."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - anything means "not ready yet"
            last = exc
        time.sleep(interval_s)
    raise TimeoutError(f"{what} not ready after {timeout_s}s: {last!r}")


def rpc(url: str, method: str, params: list | dict | None = None, *, timeout_s: float = 30.0) -> Any:
    """One JSON-RPC call for scenario scripts (the adapters use chains.endpoints instead)."""
    reply = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}, timeout=timeout_s).json()
    if reply.get("error"):
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["result"]


def rpc_batch(url: str, calls: list[tuple[str, list]], *, http: httpx.Client | None = None, timeout_s: float = 60.0) -> None:
    """``(method, params)`` calls for scenario and benchmark set-ups, as JSON-RPC batches of at most
    250 (anvil refuses very large request bodies), in order. Raises on a reply that is not a batch
    answer or holds an error."""
    post = http.post if http is not None else partial(httpx.post, timeout=timeout_s)
    for start in range(0, len(calls), 250):
        part = calls[start:start + 250]
        replies = post(url, json=[{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(part)]).json()
        if not isinstance(replies, list) or len(replies) != len(part):
            raise RuntimeError(f"batch of {part[0][0]}: {str(replies)[:500]}")
        errors = [r["error"] for r in replies if r.get("error")]
        if errors:
            raise RuntimeError(f"batch of {part[0][0]}: {errors[:3]}")


def write_state(section: str, data: dict[str, Any]) -> None:
    """Merge one devnet's URLs and expectations into var/devnet.json."""
    VAR.mkdir(parents=True, exist_ok=True)
    state = json.loads(STATE_FILE.read_text()) if STATE_FILE.exists() else {}
    state[section] = data
    STATE_FILE.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")


class NodeProcess:
    """What the three devnet nodes share: a subprocess (``process``, None for an in-process server)
    that ``stop()`` ends, idempotently (SIGTERM, then SIGKILL after ``grace_s``), and a ``with`` block
    that stops it. Subclasses free anything else in ``_after_stop``."""

    process: subprocess.Popen | None = None
    grace_s: float = 5.0

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=self.grace_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._after_stop()

    def _after_stop(self) -> None:
        """Release what the node holds besides its process (nothing by default)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
