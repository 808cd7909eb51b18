"""Deployment settings: nothing personal is cached (Cache-Control: no-store on signed-in pages, CSV and API
answers), HTTPS redirect and HSTS are settings (off by default), and `check --deploy` is clean with the
production settings README documents."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def test_signed_in_pages_csv_and_api_are_never_cached(owner_client, client):
    for url in (reverse("dashboard"), reverse("wallets"), reverse("holdings"), reverse("settings"), reverse("holdings_csv"),
                "/api/v1/wallets", reverse("account_email")):
        response = owner_client.get(url)
        assert response["Cache-Control"] == "no-store", url
    assert client.get("/api/v1/wallets")["Cache-Control"] == "no-store"  # a 401 too


def test_https_redirect_and_hsts_are_off_by_default_and_settings(settings, owner):
    assert Client().get(reverse("login")).status_code == 200
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    c = Client()
    response = c.get(reverse("login"))
    assert response.status_code == 301 and response["Location"].startswith("https://")
    assert c.get(reverse("healthz")).status_code == 200  # load-balancer probes stay on http
    secure = c.get(reverse("login"), secure=True)
    assert secure.status_code == 200 and secure["Strict-Transport-Security"].startswith("max-age=31536000")


PRODUCTION = {
    "DEBUG": "false", "SECRET_KEY": "x" * 20 + "production-secret-key-for-the-check-only-1234567890",
    "ALLOWED_HOSTS": "portfolio.example.com", "SECURE_COOKIES": "true", "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000", "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true", "SECURE_HSTS_PRELOAD": "true",
}


def test_check_deploy_is_clean_with_the_documented_production_settings(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_SETTINGS", "DJANGO_ALLOW_ASYNC_UNSAFE"))}  # the browser tests set it in this process
    env.update(PRODUCTION, VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="portfolio.settings")
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    readme = (ROOT / "README.md").read_text()
    for name in PRODUCTION:
        if name != "DEBUG":
            assert name in readme, f"README does not document {name}"
