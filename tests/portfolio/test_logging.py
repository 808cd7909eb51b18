"""Logs: one JSON object per line when LOG_FORMAT=json, and secrets in a message are redacted."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from portfolio.logging import JsonFormatter, RedactSecretsFilter

ROOT = Path(__file__).resolve().parents[2]
HEX_KEY = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
MNEMONIC = "abandon " * 11 + "about"
XPRV = "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi"
RPC_URL = "https://eth-mainnet.g.alchemy.com/v2/AbCdEfGhIjKlMnOpQrStUvWxYz012345"


def emit(message: str, *args, exc: BaseException | None = None) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactSecretsFilter())
    logger = logging.getLogger("tests.logging.json")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        if exc is not None:
            try:
                raise exc
            except BaseException:
                logger.exception(message, *args)
        else:
            logger.warning(message, *args, extra={"wallet_id": 7})
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_a_log_line_is_one_json_object_with_level_logger_and_extra_fields():
    out = emit("wallet %s synced", "w1")
    lines = out.splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert data["message"] == "wallet w1 synced"
    assert data["level"] == "warning" and data["logger"] == "tests.logging.json" and data["wallet_id"] == 7
    assert "ts" in data


def test_secrets_in_a_log_message_are_redacted():
    for secret in (HEX_KEY, "0x" + HEX_KEY, MNEMONIC, XPRV):
        out = emit("user pasted %s into the form", secret)
        data = json.loads(out)
        assert "[redacted]" in data["message"]
        assert HEX_KEY not in out and "abandon abandon abandon" not in out and XPRV not in out


def test_credentials_in_urls_and_in_tracebacks_are_redacted():
    out = emit("rpc failed", exc=RuntimeError(f"timeout at {RPC_URL} with key {HEX_KEY}"))
    data = json.loads(out)
    assert "AbCdEfGhIjKlMnOpQrStUvWxYz012345" not in out and HEX_KEY not in out
    assert "RuntimeError" in data["exc"]


def test_the_project_logs_json_when_log_format_is_json():
    code = (
        "import django, logging; django.setup();"
        f"logging.getLogger('portfolio.test').warning('pasted %s', {HEX_KEY!r});"
        "logging.getLogger('portfolio.test').info('multi\\nline')"
    )
    env = {**os.environ, "LOG_FORMAT": "json", "DJANGO_SETTINGS_MODULE": "portfolio.settings", "TESTING": "1"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "pasted [redacted]" and first["level"] == "warning"
    assert second["message"] == "multi\nline"
    assert HEX_KEY not in result.stdout + result.stderr
