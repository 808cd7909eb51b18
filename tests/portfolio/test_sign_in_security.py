"""Sign-in security: brakes on guessing (per IP and per account) engage and release, a second factor is asked
for once enabled, recovery codes work once each, and the admin cannot be reached past any of it."""

from __future__ import annotations

import re
import time

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value, yield_hotp_counters_from_time
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse

from tests.fixtures.users import PASSWORD

pytestmark = pytest.mark.django_db

LOCKED = b"Too many failed login attempts"


def sign_in(client: Client, login: str, password: str = PASSWORD, **extra):
    return client.post(reverse("login"), {"login": login, "password": password}, **extra)


def signed_in(client: Client) -> bool:
    return client.get(reverse("wallets")).status_code == 200


@pytest.fixture
def later(monkeypatch):
    """Move the clock forward (allauth's rate limits compare time.time() with stored attempts)."""

    def jump(seconds: float) -> None:
        now = time.time() + seconds
        monkeypatch.setattr(time, "time", lambda: now)

    return jump


def current_code(secret: str) -> str:
    counter = next(iter(yield_hotp_counters_from_time()))
    return format_hotp_value(hotp_value(secret, counter))


@pytest.fixture
def totp_secret(owner):
    secret = generate_totp_secret()
    TOTP.activate(owner, secret)
    return secret


# --------------------------------------------------------------------------- brakes on guessing


def test_failed_sign_ins_lock_the_account_then_release(client, owner, later):
    for _ in range(5):
        assert sign_in(client, "alice", "wrong").status_code == 200
    response = sign_in(client, "alice")  # the right password, too late
    assert LOCKED in response.content and not signed_in(client)
    other_ip = Client(REMOTE_ADDR="10.9.9.9")  # the brake is on the account, whatever the address
    assert LOCKED in sign_in(other_ip, "alice").content
    later(5 * 60 + 1)
    assert sign_in(client, "alice").status_code == 302 and signed_in(client)


def test_failed_sign_ins_from_one_address_brake_every_account_from_it(client, owner, outsider, later):
    for i in range(10):
        sign_in(client, f"guess{i}", "wrong")
    assert LOCKED in sign_in(client, "mallory").content
    elsewhere = Client(REMOTE_ADDR="10.1.2.3")
    assert sign_in(elsewhere, "mallory").status_code == 302
    later(61)
    assert sign_in(client, "alice").status_code == 302


def test_a_successful_sign_in_does_not_count_as_a_failure(client, owner):
    for _ in range(4):
        sign_in(client, "alice", "wrong")
    for _ in range(3):
        assert sign_in(client, "alice").status_code == 302
        client.post(reverse("logout"))
    assert sign_in(client, "alice", "wrong").status_code == 200  # the fifth failure
    assert LOCKED in sign_in(client, "alice").content


def test_password_reset_mails_are_braked_per_account_and_per_address(client, owner, outsider, later):
    for _ in range(5):
        client.post(reverse("account_reset_password"), {"email": "alice@example.com"})
    assert len(mail.outbox) == 3  # per account: 3 an hour
    other_ip = Client(REMOTE_ADDR="10.7.7.7")
    response = client.post(reverse("account_reset_password"), {"email": "mallory@example.com"})
    assert response.status_code == 429 or len(mail.outbox) == 3  # per address: 5 an hour
    other_ip.post(reverse("account_reset_password"), {"email": "mallory@example.com"})
    assert len(mail.outbox) == 4
    later(3601)
    client.post(reverse("account_reset_password"), {"email": "alice@example.com"})
    assert len(mail.outbox) == 5


def test_sign_ups_are_braked_per_address_and_per_email(client, later):
    for i in range(10):
        client.post(reverse("signup"), {"email": f"u{i}@example.com", "password1": PASSWORD, "password2": PASSWORD})
    assert client.post(reverse("signup"), {"email": "u99@example.com", "password1": PASSWORD, "password2": PASSWORD}).status_code == 429
    assert not get_user_model().objects.filter(email="u99@example.com").exists()
    others = [Client(REMOTE_ADDR=f"10.0.0.{i}") for i in range(5)]
    sent_before = len(mail.outbox)
    for c in others:
        c.post(reverse("signup"), {"email": "u0@example.com", "password1": PASSWORD, "password2": PASSWORD})
    assert len(mail.outbox) - sent_before <= 2  # one address cannot be flooded with mails from many places
    later(3601)
    assert client.post(reverse("signup"), {"email": "u99@example.com", "password1": PASSWORD, "password2": PASSWORD}).status_code == 302


# --------------------------------------------------------------------------- second factor


def test_a_user_turns_on_an_authenticator_app_and_then_sign_in_asks_for_it(client, owner, later):
    assert sign_in(client, "alice").status_code == 302
    response = client.get(reverse("mfa_activate_totp"))  # changing sign-in security asks for the password again
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_reauthenticate"))
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    page = client.get(reverse("mfa_activate_totp"))
    assert page.status_code == 200
    secret = page.context["form"].secret
    response = client.post(reverse("mfa_activate_totp"), {"code": current_code(secret)})
    assert response.status_code == 302
    assert Authenticator.objects.filter(user=owner, type=Authenticator.Type.TOTP).exists()
    assert Authenticator.objects.filter(user=owner, type=Authenticator.Type.RECOVERY_CODES).exists()
    client.post(reverse("logout"))

    response = sign_in(client, "alice")
    assert response.status_code == 302 and response["Location"] == reverse("mfa_authenticate")
    assert not signed_in(client)  # the password alone is not enough
    response = client.post(reverse("mfa_authenticate"), {"code": "000000" if current_code(secret) != "000000" else "111111"})
    assert response.status_code == 200 and not signed_in(client)
    later(30)  # a code is good once: the one used to turn it on is spent
    response = client.post(reverse("mfa_authenticate"), {"code": current_code(secret)})
    assert response.status_code == 302 and signed_in(client)


def test_wrong_codes_are_braked_too(client, owner, totp_secret):
    sign_in(client, "alice")
    for _ in range(5):
        client.post(reverse("mfa_authenticate"), {"code": "123456"})
    response = client.post(reverse("mfa_authenticate"), {"code": current_code(totp_secret)})
    assert not signed_in(client), response.content[:300]


def test_recovery_codes_work_once_each(client, owner, totp_secret):
    codes = RecoveryCodes.activate(owner).get_unused_codes()
    assert len(codes) == 10
    sign_in(client, "alice")
    assert client.post(reverse("mfa_authenticate"), {"code": codes[0]}).status_code == 302 and signed_in(client)
    client.post(reverse("logout"))
    sign_in(client, "alice")
    client.post(reverse("mfa_authenticate"), {"code": codes[0]})
    assert not signed_in(client)  # used up
    assert client.post(reverse("mfa_authenticate"), {"code": codes[1]}).status_code == 302 and signed_in(client)
    assert codes[0] not in RecoveryCodes(Authenticator.objects.get(user=owner, type="recovery_codes")).get_unused_codes()


def test_the_second_factor_pages_offer_codes_and_security_keys(owner_client, owner, totp_secret):
    RecoveryCodes.activate(owner)
    body = owner_client.get(reverse("mfa_index")).content.decode()
    assert "Authenticator App" in body and "Recovery Codes" in body and "Security Keys" in body


# --------------------------------------------------------------------------- the admin


@pytest.fixture
def staff_totp(staff):
    secret = generate_totp_secret()
    TOTP.activate(staff, secret)
    return secret


def test_the_admin_sign_in_is_the_site_sign_in(client, staff):
    response = client.get(reverse("admin:login"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    # Posting a password to the admin's own form checks nothing and signs nobody in.
    response = client.post(reverse("admin:login"), {"username": "sam", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert client.get(reverse("admin:index")).status_code == 302


def test_the_admin_is_behind_the_same_brakes(client, staff):
    for _ in range(5):
        sign_in(client, "sam", "wrong")
    sign_in(client, "sam", PASSWORD, follow=False)
    assert client.get(reverse("admin:index")).status_code == 302


def test_the_admin_is_behind_the_second_factor(client, staff, staff_totp):
    nxt = reverse("admin:index")
    response = client.post(reverse("login"), {"login": "sam", "password": PASSWORD, "next": nxt})
    assert response["Location"] == reverse("mfa_authenticate")
    assert client.get(nxt).status_code == 302
    response = client.post(reverse("mfa_authenticate"), {"code": current_code(staff_totp)})
    assert response["Location"] == nxt
    assert client.get(nxt).status_code == 200


def test_staff_can_be_required_to_have_a_second_factor(staff_client, staff, settings):
    settings.MFA_REQUIRED_FOR_STAFF = True
    for url in (reverse("admin:index"), reverse("dashboard"), "/api/v1/wallets"):
        response = staff_client.get(url)
        assert response.status_code == 302 and response["Location"] == reverse("mfa_activate_totp"), url
    assert staff_client.get(reverse("mfa_index")).status_code == 200  # the set-up itself stays reachable
    TOTP.activate(staff, generate_totp_secret())
    assert staff_client.get(reverse("admin:index")).status_code == 200


def test_non_staff_are_not_held_to_the_staff_rule(owner_client, settings):
    settings.MFA_REQUIRED_FOR_STAFF = True
    assert owner_client.get(reverse("dashboard")).status_code == 200


def test_sign_in_pages_and_codes_never_reach_the_log(client, owner, totp_secret, caplog):
    caplog.set_level("DEBUG")
    sign_in(client, "alice", "hunter2-wrong-password")
    code = current_code(totp_secret)
    sign_in(client, "alice")
    client.post(reverse("mfa_authenticate"), {"code": code})
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "hunter2-wrong-password" not in text and PASSWORD not in text and not re.search(rf"\b{code}\b", text)
