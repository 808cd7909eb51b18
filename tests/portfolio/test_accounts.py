"""Accounts (django-allauth): sign-up, sign-in, sign-out, password change and reset, and that every page but
those needs a signed-in user. Brakes and the second factor are in test_sign_in_security.py."""

from __future__ import annotations

import re

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from portfolio.models import Profile
from tests.fixtures.users import PASSWORD

pytestmark = pytest.mark.django_db

PUBLIC = {
    "login", "signup", "account_login", "account_signup", "account_reset_password", "account_reset_password_done",
    "account_reset_password_from_key", "account_reset_password_from_key_done", "account_email_verification_sent",
    "account_confirm_email", "account_inactive", "healthz", "readyz", "favicon",
}
NEW_PASSWORD = "a much longer passphrase 77"


def _link(message) -> str:
    return re.search(r"https?://[^/\s]+(/\S+)", message.body).group(1)


def _without_tokens(body: bytes) -> bytes:
    return re.sub(rb'(X-CSRFToken": "|csrfmiddlewaretoken" value=")[^"]+', rb"\1", body)


def test_signing_up_confirms_the_email_then_signs_in_with_a_profile(client, settings):
    response = client.post(reverse("signup"), {"email": "bob@example.com", "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("account_email_verification_sent")
    user = get_user_model().objects.get(email="bob@example.com")
    assert user.username  # made from the address; sign-up asks none (it would tell a taken name apart)
    assert user.profile.quote_currency == settings.DEFAULT_QUOTE_CURRENCY
    assert client.get(reverse("wallets")).status_code == 302  # not signed in before the address is confirmed
    assert len(mail.outbox) == 1
    confirm = _link(mail.outbox[0])
    assert client.get(confirm).status_code == 200
    response = client.post(confirm)
    assert response.status_code == 302 and response["Location"] == reverse("wallets")
    assert client.get(reverse("wallets")).status_code == 200
    assert EmailAddress.objects.get(user=user).verified


def test_a_self_registered_account_cannot_sign_in_before_confirming(client):
    client.post(reverse("signup"), {"email": "bob@example.com", "password1": PASSWORD, "password2": PASSWORD})
    response = client.post(reverse("login"), {"login": "bob@example.com", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("account_email_verification_sent")
    assert client.get(reverse("wallets")).status_code == 302


def test_sign_up_does_not_tell_whether_an_account_exists(client, owner):
    taken = client.post(reverse("signup"), {"email": "alice@example.com", "password1": PASSWORD, "password2": PASSWORD}, follow=True)
    fresh = client.post(reverse("signup"), {"email": "carol@example.com", "password1": PASSWORD, "password2": PASSWORD}, follow=True)
    assert taken.redirect_chain == fresh.redirect_chain
    # The same page, word for word (the address typed is shown back in both).
    assert _without_tokens(taken.content).replace(b"alice", b"X") == _without_tokens(fresh.content).replace(b"carol", b"X")
    assert get_user_model().objects.filter(email="alice@example.com").count() == 1
    # The owner of the taken address learns about the attempt; the page never said.
    assert sorted(m.to[0] for m in mail.outbox) == ["alice@example.com", "carol@example.com"]


def test_sign_up_rejects_weak_or_mismatched_passwords_without_echoing_them(client):
    response = client.post(reverse("signup"), {"email": "bob@example.com", "password1": "12345678", "password2": "12345678"})
    assert response.status_code == 200 and b"errorlist" in response.content
    response = client.post(reverse("signup"), {"email": "bob@example.com", "password1": PASSWORD, "password2": PASSWORD + "x"})
    assert response.status_code == 200 and PASSWORD.encode() not in response.content
    assert not get_user_model().objects.filter(email="bob@example.com").exists()


def test_sign_up_can_be_closed(client, settings):
    settings.SIGNUP_OPEN = False
    response = client.post(reverse("signup"), {"email": "bob@example.com", "password1": PASSWORD, "password2": PASSWORD})
    assert b"closed" in response.content.lower()
    assert not get_user_model().objects.filter(email="bob@example.com").exists()


def test_every_user_gets_a_profile_however_created(db):
    user = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    assert Profile.objects.filter(user=user).exists()


def test_signing_in_and_out(client, owner):
    assert client.get(reverse("login")).status_code == 200
    response = client.post(reverse("login"), {"login": "alice", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")
    assert client.get(reverse("wallets")).status_code == 200
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("wallets")).status_code == 302


def test_sign_out_needs_a_post(owner_client):
    # A GET shows a confirmation form (a link or an image cannot sign anyone out).
    response = owner_client.get(reverse("logout"))
    assert response.status_code == 200 and b'method="post"' in response.content
    assert owner_client.get(reverse("wallets")).status_code == 200


def test_signing_in_with_the_email_address(client, owner):
    response = client.post(reverse("login"), {"login": "alice@example.com", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")


def test_a_wrong_password_does_not_sign_in(client, owner):
    response = client.post(reverse("login"), {"login": "alice", "password": "nope"})
    assert response.status_code == 200 and b"errorlist" in response.content
    assert b"nope" not in response.content
    assert client.get(reverse("wallets")).status_code == 302


def test_sign_in_returns_to_the_page_asked_for(client, owner):
    response = client.get(reverse("wallets"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login") + "?next=")
    response = client.post(reverse("login") + "?next=/wallets/", {"login": "alice", "password": PASSWORD, "next": "/wallets/"})
    assert response["Location"] == "/wallets/"


def test_sign_in_never_returns_to_another_site(client, owner):
    response = client.post(reverse("login"), {"login": "alice", "password": PASSWORD, "next": "https://evil.example/"})
    assert response["Location"] == reverse("dashboard")


def test_changing_the_password(owner, owner_client, client):
    assert owner_client.get(reverse("account_change_password")).status_code == 200
    response = owner_client.post(
        reverse("account_change_password"), {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )
    assert response.status_code == 302
    assert b"Password successfully changed" in owner_client.get(response["Location"]).content
    assert client.login(username="alice", password=NEW_PASSWORD)


def test_changing_the_password_needs_the_old_one(owner, owner_client, client):
    response = owner_client.post(
        reverse("account_change_password"), {"oldpassword": "wrong", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )
    assert response.status_code == 200 and b"errorlist" in response.content
    assert client.login(username="alice", password=PASSWORD)


def test_resetting_a_forgotten_password_by_email(owner, client):
    assert client.get(reverse("account_reset_password")).status_code == 200
    response = client.post(reverse("account_reset_password"), {"email": "alice@example.com"})
    assert response.status_code == 302 and response["Location"] == reverse("account_reset_password_done")
    assert client.get(reverse("account_reset_password_done")).status_code == 200
    assert len(mail.outbox) == 1
    page = client.get(_link(mail.outbox[0]), follow=True)
    assert page.status_code == 200 and b"new password" in page.content.lower()
    response = client.post(page.redirect_chain[-1][0], {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("account_reset_password_from_key_done")
    assert client.get(reverse("account_reset_password_from_key_done")).status_code == 200
    assert client.login(username="alice", password=NEW_PASSWORD)


def test_an_unknown_email_gets_the_same_answer_and_no_mail(db, client):
    response = client.post(reverse("account_reset_password"), {"email": "nobody@example.com"})
    assert response["Location"] == reverse("account_reset_password_done")
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
        names = re.findall(r"<(?:\w+:)?(\w+)>", route)
        kwargs = {k: "MQ" if k == "uidb36" else "set-password" if k == "key" else 1 for k in names}
        url = reverse(name, kwargs=kwargs)
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            if name in PUBLIC:
                assert not (response.status_code == 302 and response["Location"].startswith(reverse("login"))), name
            elif url.startswith("/api/") and response.status_code in (401, 404, 405):
                pass  # the API answers 401 JSON (test_api checks every operation), 404/405 where nothing is served
            elif name in ("logout", "account_logout"):
                assert response.status_code == 302 and not client.session.get("_auth_user_id")
            else:
                assert response.status_code == 302 and response["Location"].startswith(reverse("login")), (name, method, response.status_code)
            checked += 1
    assert checked >= 40


def test_the_sign_in_page_shows_links_to_sign_up_and_reset(client, db):
    body = client.get(reverse("login")).content.decode()
    assert reverse("signup") in body and reverse("account_reset_password") in body


def test_account_pages_wear_the_site_frame(owner_client):
    for name in ("account_email", "account_change_password", "mfa_index", "mfa_activate_totp"):
        body = owner_client.get(reverse(name), follow=True).content.decode()  # set-up pages ask for the password again first
        assert 'class="topbar"' in body and "css/app.css" in body, name
