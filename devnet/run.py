"""Start the local chain of every registered family, run its demo scenario, write var/devnet.json, and wait for Ctrl-C.

`make run` runs this (through the Procfile) before the web server's `manage.py demo --wait` reads the
file. Ports default to those seeded in portfolio/seed.py; a taken port falls back to a free one (the
demo command takes the URLs from var/devnet.json, not from the seed).
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import threading
import time
from importlib import import_module
from types import ModuleType
from typing import Any

from devnet.common import STATE_FILE, VAR, free_port


def devnets() -> dict[str, ModuleType]:
    """One devnet package per registered chain family (``devnet/<family>/``, same name)."""
    from chains.registry import FAMILIES

    return {family: import_module(f"devnet.{family}") for family in FAMILIES}


def _port(preferred: int) -> int:
    with socket.socket() as s:
        # As the nodes bind: a port left in TIME_WAIT by the previous run is free to listen on again.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            return free_port()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    available = devnets()
    parser.add_argument("--only", nargs="*", choices=sorted(available), help="start only these chains")
    parser.add_argument("--no-wait", action="store_true", help="exit after writing var/devnet.json (stops the chains)")
    args = parser.parse_args(argv)

    VAR.mkdir(parents=True, exist_ok=True)
    STATE_FILE.unlink(missing_ok=True)  # the demo command waits for a fresh file
    families = args.only or list(available)
    nodes: list[Any] = []
    state: dict[str, Any] = {}
    errors: dict[str, str] = {}

    def run(family: str) -> None:
        try:
            devnet = available[family]
            node = devnet.start(_port(devnet.DEFAULT_PORT))
            nodes.append(node)
            started = time.monotonic()
            state[family] = devnet.run_scenario(node)
            print(f"devnet: {family} ready at {node.url} (scenario {time.monotonic() - started:.1f}s)", flush=True)
        except Exception as exc:  # report and keep the other chains
            errors[family] = f"{type(exc).__name__}: {exc}"
            print(f"devnet: {family} FAILED: {errors[family]}", file=sys.stderr, flush=True)

    threads = [threading.Thread(target=run, args=(f,), name=f"devnet-{f}") for f in families]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    tmp = STATE_FILE.with_suffix(".tmp")
    tmp.write_text(json.dumps({**state, "errors": errors}, indent=2, sort_keys=True) + "\n")
    tmp.replace(STATE_FILE)  # atomic: readers never see half a file
    print(f"devnet: wrote {STATE_FILE}", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not args.no_wait and not stop.is_set():
            stop.wait(1)
    except KeyboardInterrupt:
        pass
    finally:
        for node in nodes:
            node.stop()
        STATE_FILE.unlink(missing_ok=True)  # its URLs are dead now: the next `make run` must not read them
    return 1 if errors and not state else 0


if __name__ == "__main__":
    sys.exit(main())
