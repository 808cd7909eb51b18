"""Accounts: sign-up, sign-in, sign-out, password change and reset, and that every page but those needs a
signed-in user."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from portfolio.models import Profile
from tests.fixtures.users import PASSWORD

pytestmark = pytest.mark.django_db

PUBLIC = {"login", "signup", "password_reset", "password_reset_done", "password_reset_confirm", "password_reset_complete", "healthz", "readyz"}
NEW_PASSWORD = "a much longer passphrase 77"


def test_signing_up_creates_a_user_with_a_profile_and_signs_in(client, settings):
    response = client.post(
        reverse("signup"), {"username": "bob", "email": "bob@example.com", "password1": PASSWORD, "password2": PASSWORD}
    )
    assert response.status_code == 302 and response["Location"] == reverse("wallets")
    user = get_user_model().objects.get(username="bob")
    assert user.profile.quote_currency == settings.DEFAULT_QUOTE_CURRENCY
    assert client.get(reverse("wallets")).status_code == 200


def test_sign_up_rejects_weak_or_mismatched_passwords_without_echoing_them(client):
    response = client.post(reverse("signup"), {"username": "bob", "email": "bob@example.com", "password1": "12345678", "password2": "12345678"})
    assert response.status_code == 200 and b"errorlist" in response.content
    response = client.post(reverse("signup"), {"username": "bob", "email": "bob@example.com", "password1": PASSWORD, "password2": PASSWORD + "x"})
    assert response.status_code == 200 and PASSWORD.encode() not in response.content
    assert not get_user_model().objects.filter(username="bob").exists()


def test_every_user_gets_a_profile_however_created(db):
    user = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    assert Profile.objects.filter(user=user).exists()


def test_signing_in_and_out(client, owner):
    assert client.get(reverse("login")).status_code == 200
    response = client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")
    assert client.get(reverse("wallets")).status_code == 200
    assert client.get(reverse("logout")).status_code == 405  # sign-out is a POST only
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("wallets")).status_code == 302


def test_a_wrong_password_does_not_sign_in(client, owner):
    response = client.post(reverse("login"), {"username": "alice", "password": "nope"})
    assert response.status_code == 200 and b"errorlist" in response.content
    assert client.get(reverse("wallets")).status_code == 302


def test_sign_in_returns_to_the_page_asked_for(client, owner):
    response = client.get(reverse("wallets"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login") + "?next=")
    response = client.post(reverse("login") + "?next=/wallets/", {"username": "alice", "password": PASSWORD, "next": "/wallets/"})
    assert response["Location"] == "/wallets/"


def test_changing_the_password(owner, owner_client, client):
    assert owner_client.get(reverse("password_change")).status_code == 200
    response = owner_client.post(
        reverse("password_change"), {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert response.status_code == 302 and response["Location"] == reverse("password_change_done")
    assert owner_client.get(reverse("password_change_done")).status_code == 200
    assert client.login(username="alice", password=NEW_PASSWORD)


def test_resetting_a_forgotten_password_by_email(owner, client):
    assert client.get(reverse("password_reset")).status_code == 200
    response = client.post(reverse("password_reset"), {"email": "alice@example.com"})
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_done")
    assert client.get(reverse("password_reset_done")).status_code == 200
    assert len(mail.outbox) == 1
    link = re.search(r"https?://[^/\s]+(/\S+)", mail.outbox[0].body).group(1)
    page = client.get(link, follow=True)
    assert page.status_code == 200 and b"Choose a new password" in page.content
    response = client.post(page.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_complete")
    assert client.get(reverse("password_reset_complete")).status_code == 200
    assert client.login(username="alice", password=NEW_PASSWORD)


def test_an_unknown_email_gets_the_same_answer_and_no_mail(db, client):
    response = client.post(reverse("password_reset"), {"email": "nobody@example.com"})
    assert response["Location"] == reverse("password_reset_done")
    assert mail.outbox == []


def test_the_default_email_backend_is_the_console(settings):
    from portfolio import settings as project_settings

    assert project_settings.EMAIL_BACKEND == "django.core.mail.backends.console.EmailBackend"


def _named_patterns(resolver=None, prefix="", namespace=""):
    resolver = resolver or get_resolver()
    for p in resolver.url_patterns:
        if isinstance(p, URLResolver):
            if p.app_name == "admin":
                continue
            ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
            yield from _named_patterns(p, prefix + str(p.pattern), ns)
        elif isinstance(p, URLPattern) and p.name:
            yield namespace + p.name, prefix + str(p.pattern), p


def test_every_page_but_sign_in_sign_up_and_reset_needs_a_signed_in_user(db, client):
    checked = 0
    for name, route, pattern in _named_patterns():
        kwargs = {k: ("MQ" if k == "uidb64" else "set-password" if k == "token" else 1) for k in pattern.pattern.converters}
        for k in re.findall(r"<(?:\w+:)?(\w+)>", route):
            kwargs.setdefault(k, 1)
        url = reverse(name, kwargs=kwargs)
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            if name in PUBLIC:
                assert not (response.status_code == 302 and response["Location"].startswith(reverse("login"))), name
            elif url.startswith("/api/") and response.status_code in (401, 404, 405):
                pass  # the API answers 401 JSON (test_api checks every operation), 404/405 where nothing is served
            else:
                assert response.status_code == 302 and response["Location"].startswith(reverse("login")), (name, method, response.status_code)
            checked += 1
    assert checked >= 20


def test_the_sign_in_page_shows_links_to_sign_up_and_reset(client, db):
    body = client.get(reverse("login")).content.decode()
    assert reverse("signup") in body and reverse("password_reset") in body
