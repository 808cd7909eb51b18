"""Account settings: quote currency, dust threshold and personal API tokens (the password has its own
Django views)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django import forms
from django.conf import settings as django_settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from portfolio.forms import SecretBlankingForm
from portfolio.models import ApiToken, Profile
from portfolio.services.accounts import ensure_profile
from portfolio.services.tokens import do_create_api_token, do_revoke_api_token


class PreferencesForm(forms.ModelForm):
    quote_currency = forms.ChoiceField(
        label="Quote currency",
        help_text="Values, charts and the CSV export are shown in this currency.",
    )
    dust_threshold = forms.DecimalField(
        label="Dust threshold",
        min_value=Decimal(0),
        max_digits=20,
        decimal_places=2,
        help_text="“Hide dust” on the holdings page hides balances worth less than this (in your quote currency).",
    )
    health_alert_below = forms.DecimalField(
        required=False,
        label="Health-factor alert below",
        min_value=Decimal("1.00"),
        max_value=Decimal("10.00"),
        max_digits=10,
        decimal_places=2,
        help_text="The dashboard warns when a lending position's health factor falls below this (liquidation starts at 1).",
    )

    class Meta:
        model = Profile
        fields = ("quote_currency", "dust_threshold", "health_alert_below")

    def clean_health_alert_below(self):
        """Left empty (or by a form that predates it): keep the current threshold."""
        value = self.cleaned_data.get("health_alert_below")
        return value if value is not None else self.instance.health_alert_below

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["quote_currency"].choices = [(c, c) for c in django_settings.QUOTE_CURRENCIES]


EXPIRY_CHOICES = [("30", "30 days"), ("90", "90 days"), ("365", "1 year"), ("", "Never")]


class ApiTokenForm(SecretBlankingForm):
    name = forms.CharField(max_length=80, help_text="What uses it, e.g. “Grafana” or “tax script”.")
    scope = forms.ChoiceField(choices=ApiToken.SCOPE_CHOICES, initial=ApiToken.READ, widget=forms.RadioSelect,
                              help_text="A read-only token cannot add, change or delete anything.")
    expires_in = forms.ChoiceField(choices=EXPIRY_CHOICES, initial="90", required=False, label="Expires after")
    prefix = "token"
    secret_checked = ("name",)

    def expires_at(self):
        days = self.cleaned_data.get("expires_in")
        return timezone.now() + timedelta(days=int(days)) if days else None


def _render(request: HttpRequest, form=None, token_form=None, *, new_token: str = "", status: int = 200) -> HttpResponse:
    profile = ensure_profile(request.user)
    context = {
        "form": form or PreferencesForm(instance=profile), "profile": profile, "nav_active": "settings",
        "token_form": token_form or ApiTokenForm(), "new_token": new_token,
        "tokens": ApiToken.objects.filter(owner=request.user).order_by("revoked_at", "-created_at", "-id")[:100],
        "now": timezone.now(),
    }
    return render(request, "portfolio/settings.html", context, status=status)


@require_http_methods(["GET", "POST"])
def account_settings(request: HttpRequest) -> HttpResponse:
    profile = ensure_profile(request.user)
    form = PreferencesForm(request.POST or None, instance=profile)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Settings saved.")
        return redirect("settings")
    return _render(request, form)


@never_cache
@require_POST
def api_token_create(request: HttpRequest) -> HttpResponse:
    """Create a token and show it on this one response only (never in a message or redirect: those would
    put it in the session or a cookie). ``never_cache``: no cache keeps the page."""
    token_form = ApiTokenForm(request.POST)
    if token_form.is_valid():
        try:
            _, text = do_create_api_token(request.user, token_form.cleaned_data["name"], token_form.cleaned_data["scope"],
                                          token_form.expires_at())
        except ValidationError as exc:
            token_form.add_service_error(exc, "name")
        else:
            return _render(request, new_token=text, status=201)
    return _render(request, token_form=token_form, status=422)


@require_POST
def api_token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=token_id, owner=request.user)
    do_revoke_api_token(token)
    messages.success(request, f"Token “{token.name}” revoked: requests with it are refused from now on.")
    return redirect("settings")
