"""django-allauth wiring: the account adapter, the sign-up form and the e-mail verification stage."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account import forms as allauth_forms
from allauth.account.models import EmailAddress
from allauth.account.stages import EmailVerificationStage
from allauth.core import ratelimit
from django import forms
from django.conf import settings
from django.http import HttpRequest

from chains.secrets import WATCH_ONLY_MESSAGE, secret_kind
from portfolio.forms import SecretBlankingMixin

TOO_MANY_SIGNUPS = "Too many sign-ups for this address. Try again later."


class AccountAdapter(DefaultAccountAdapter):
    """Sign-up can be closed (SIGNUP_OPEN=false); accounts made by an operator skip e-mail verification."""

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return settings.SIGNUP_OPEN

    def get_login_stages(self) -> list[str]:
        default = "allauth.account.stages.EmailVerificationStage"
        return [
            "portfolio.accounts.SelfServiceEmailVerificationStage" if stage == default else stage
            for stage in super().get_login_stages()
        ]


class SelfServiceEmailVerificationStage(EmailVerificationStage):
    """Verification is mandatory for accounts that signed up themselves (they have an EmailAddress row).
    Accounts an operator made (createsuperuser, the admin, the demo, users from before allauth) have none:
    the operator vouched for them, and they must still be able to sign in."""

    def handle(self):
        user = self.login.user
        if user is not None and not self.login.signup and not EmailAddress.objects.filter(user_id=user.pk).exists():
            return None, True
        return super().handle()


def _refuse(value: str) -> str:
    if secret_kind(value):
        raise forms.ValidationError(WATCH_ONLY_MESSAGE, code="secret")
    return value


class LoginForm(SecretBlankingMixin, allauth_forms.LoginForm):
    """A secret pasted as the user name is refused before any look-up, and blanked (never echoed)."""

    secret_checked = ("login",)

    def clean_login(self) -> str:
        _refuse(self.data.get(self.add_prefix("login"), ""))
        return super().clean_login()


class ResetPasswordForm(SecretBlankingMixin, allauth_forms.ResetPasswordForm):
    secret_checked = ("email",)


class AddEmailForm(SecretBlankingMixin, allauth_forms.AddEmailForm):
    secret_checked = ("email",)


class SignupForm(SecretBlankingMixin, allauth_forms.SignupForm):
    """allauth's form plus a per-address brake, answered the same whether or not the address has an account;
    a secret pasted as the address is refused and blanked."""

    secret_checked = ("email",)

    def clean_email(self) -> str:
        _refuse(self.data.get(self.add_prefix("email"), ""))
        email = super().clean_email()
        request = getattr(self, "request", None) or _current_request()
        if email and request is not None and not ratelimit.consume(request, action="signup_email", key=email.lower()):
            raise forms.ValidationError(TOO_MANY_SIGNUPS, code="rate_limited")
        return email


def _current_request():
    from allauth.core import context

    return context.request
