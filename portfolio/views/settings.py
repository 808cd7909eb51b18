"""Account settings: quote currency and dust threshold (the password has its own Django views)."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.conf import settings as django_settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from portfolio.models import Profile
from portfolio.services.accounts import ensure_profile


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


@require_http_methods(["GET", "POST"])
def account_settings(request: HttpRequest) -> HttpResponse:
    profile = ensure_profile(request.user)
    form = PreferencesForm(request.POST or None, instance=profile)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Settings saved.")
        return redirect("settings")
    return render(request, "portfolio/settings.html", {"form": form, "profile": profile, "nav_active": "settings"})
