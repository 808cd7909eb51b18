"""Prepare bitcoinlib's data dir under var/ (never the user's home) before bitcoinlib is imported."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any, Mapping

ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("PORTFOLIO_BCL_DATA_DIR", ROOT / "var" / "bitcoinlib"))

# Esplora-style providers bitcoinlib knows (name in its providers.json -> network), in priority order.
DEFAULT_PROVIDERS = ("blockstream", "mempool", "blockstream.testnet", "mempool.testnet")

_lock = threading.Lock()
_ready = False


def _package_data_dir() -> Path:
    spec = importlib.util.find_spec("bitcoinlib")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("bitcoinlib is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def setup(providers: Mapping[str, Mapping[str, Any]] | None = None) -> Path:
    """Write install.log, config.ini, networks.json and providers.json into ``DATA_DIR`` and point
    ``BCL_DATA_DIR`` at it; idempotent. ``providers`` replaces the default provider list (entries in
    bitcoinlib's providers.json format). Must run before the first ``import bitcoinlib``.

    Raises ``RuntimeError`` if bitcoinlib was already imported with another data dir."""
    global _ready
    with _lock:
        if _ready and providers is None:
            return DATA_DIR
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        # install.log first: without it bitcoinlib overwrites its data dir on import.
        log = DATA_DIR / "install.log"
        if not log.exists():
            log.write_text("Prepared by chains.bitcoin.bcl; delete var/bitcoinlib to regenerate.\n")
        src = _package_data_dir()
        if not (DATA_DIR / "networks.json").exists():
            shutil.copyfile(src / "networks.json", DATA_DIR / "networks.json")
        (DATA_DIR / "config.ini").write_text(
            "[locations]\ndatabase_dir=database\n\n"
            "[common]\nservice_caching_enabled=False\nmax_transactions=1000\ntimeout_requests=10\n\n"
            "[logs]\nenable_bitcoinlib_logging=False\nlog_file=bitcoinlib.log\n"
        )
        if providers is None:
            known = json.loads((src / "providers.json").read_text())
            providers = {name: known[name] for name in DEFAULT_PROVIDERS if name in known}
        (DATA_DIR / "providers.json").write_text(json.dumps(dict(providers), indent=2, sort_keys=True) + "\n")
        os.environ["BCL_DATA_DIR"] = str(DATA_DIR)
        import sys

        mod = sys.modules.get("bitcoinlib.config.config")
        if mod is not None and Path(str(mod.BCL_DATA_DIR)).resolve() != DATA_DIR.resolve():
            raise RuntimeError("bitcoinlib was imported before chains.bitcoin.bcl.setup(): data dir is wrong")
        _ready = True
        return DATA_DIR


def hdkey_class():
    """bitcoinlib's ``HDKey``, imported after ``setup()``."""
    setup()
    from bitcoinlib.keys import HDKey

    return HDKey
