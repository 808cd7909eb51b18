"""Forms: wallets and portfolios (sign-up is allauth's, portfolio/accounts.py). Wallet input is validated by the services (never echoed if secret)."""

from __future__ import annotations

from html import escape

from django import forms
from django.core.exceptions import ValidationError
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe

from chains.secrets import WATCH_ONLY_MESSAGE, secret_kind
from chains.evm.address import looks_like_ens_name
from portfolio.models import FAMILY_CHOICES, Portfolio, Wallet
from portfolio.services.ens import check_name
from portfolio.services.wallets import BITCOIN_SCRIPT_TYPES, MAX_GAP_LIMIT, parse_watch_only, refuse_secret_text

SCRIPT_TYPE_CHOICES = [
    ("", "As the key's prefix says (xpub: p2pkh, ypub: p2sh-p2wpkh, zpub: p2wpkh)"),
    ("p2pkh", "Legacy (p2pkh, BIP-44)"),
    ("p2sh-p2wpkh", "Nested SegWit (p2sh-p2wpkh, BIP-49)"),
    ("p2wpkh", "Native SegWit (p2wpkh, BIP-84)"),
    ("p2tr", "Taproot (p2tr, BIP-86)"),
]
assert {c for c, _ in SCRIPT_TYPE_CHOICES if c} == set(BITCOIN_SCRIPT_TYPES)


DB_ID_MAX = 2**63 - 1  # a 64-bit primary key: a larger id must be "not a choice", not an overflowing query


class IdMultipleChoiceField(forms.ModelMultipleChoiceField):
    """A ModelMultipleChoiceField that refuses ids outside the database's integer range before querying."""

    def _check_values(self, value):
        for pk in value if isinstance(value, (list, tuple)) else [value]:
            try:
                number = int(str(pk))
            except ValueError:
                continue  # the parent reports it as an invalid value
            if not 1 <= number <= DB_ID_MAX:
                raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice", params={"value": pk})
        return super()._check_values(value)


class QuickCheckboxSelectMultiple(forms.CheckboxSelectMultiple):
    """CheckboxSelectMultiple with the markup of Django's templates built by plain string formatting: the
    new-portfolio form lists every wallet, and two template includes per option took ~0.25 s for
    1,000 wallets. Every value is escaped (``html.escape``, as Django's ``escape``)."""

    def render(self, name, value, attrs=None, renderer=None):
        widget = self.get_context(name, value, attrs)["widget"]
        outer = "".join(f' {k}="{escape(str(widget["attrs"][k]))}"' for k in ("id", "class") if widget["attrs"].get(k))
        options = "".join(f"<div>\n    {self._option(o)}\n\n</div>" for _g, group, _i in widget["optgroups"] for o in group)
        return mark_safe(f"<div{outer}>{options}\n</div>")

    @staticmethod
    def _option(o: dict) -> str:
        attrs = o["attrs"]
        flat = "".join(f" {k}" if v is True else f' {k}="{escape(str(v))}"' for k, v in attrs.items() if v is not False)
        box = f'<input type="{escape(o["type"])}" name="{escape(o["name"])}" value="{escape(str(o["value"]))}"{flat}>'
        if not o["wrap_label"]:
            return box
        label_for = f' for="{escape(str(attrs["id"]))}"' if attrs.get("id") else ""
        return f"<label{label_for}>{box}\n {conditional_escape(o['label'])}</label>"


class SecretBlankingMixin:
    """For a form whose fields listed in ``secret_checked`` are blanked on re-render when they held a secret,
    so a pasted private key or seed phrase is never sent back to the browser (allauth's forms use it too)."""

    secret_checked: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.secret_checked:
            if name in self.fields:
                # No maxlength in the page: a browser would cut a pasted seed phrase to its first words,
                # too few to be recognised, and keep them. The server checks the length after the secret.
                self.fields[name].widget.attrs.pop("maxlength", None)

    def _blank(self, name: str) -> None:
        data = self.data.copy()
        data[self.add_prefix(name)] = ""
        self.data = data

    def add_service_error(self, exc: ValidationError, field: str | None = None) -> None:
        """Show a service's ``ValidationError`` on ``field`` (blanking it if it held a secret)."""
        for error in exc.error_list:
            self.add_error(None if error.code == "limit" else field, error)
            if error.code == "secret" and field:
                self._blank(field)

    def _post_clean(self) -> None:
        super()._post_clean()
        for name in self.secret_checked:
            raw = self.data.get(self.add_prefix(name)) if self.is_bound else None
            if isinstance(raw, str) and secret_kind(raw):
                # Whatever else failed (length, format), the only error shown is the watch-only one.
                self._errors[name] = self.error_class([WATCH_ONLY_MESSAGE], renderer=self.renderer)
                self.cleaned_data.pop(name, None)
            if any(e.code == "secret" for e in self._errors.as_data().get(name, [])) or name in self._errors and WATCH_ONLY_MESSAGE in self._errors[name]:
                self._blank(name)


class SecretBlankingForm(SecretBlankingMixin, forms.Form):
    """A plain form with secret blanking."""


class WalletAddForm(SecretBlankingForm):
    family = forms.ChoiceField(choices=FAMILY_CHOICES, initial="evm", label="Chain family")
    address = forms.CharField(
        max_length=200,
        label="Address or extended public key",
        help_text="Watch-only: a public address, an ENS name such as name.eth (EVM), or an xpub/ypub/zpub (tpub/upub/vpub on test networks). Never a private key or seed phrase.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "off"}),
    )
    label = forms.CharField(max_length=80, required=False)
    portfolios = IdMultipleChoiceField(queryset=Portfolio.objects.none(), required=False, widget=forms.CheckboxSelectMultiple)
    script_type = forms.ChoiceField(
        choices=SCRIPT_TYPE_CHOICES, required=False, label="Script type (Bitcoin extended keys)",
        help_text="For an xpub exported from a SegWit account, pick the account's type.",
    )
    gap_limit = forms.IntegerField(
        min_value=1, max_value=MAX_GAP_LIMIT, initial=20, label="Gap limit (Bitcoin extended keys)",
        help_text="How many unused addresses in a row end the scan.",
    )
    secret_checked = ("address", "label")

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner
        self.fields["portfolios"].queryset = Portfolio.objects.filter(owner=owner)
        if not self.fields["portfolios"].queryset.exists():
            del self.fields["portfolios"]  # nothing to choose yet

    def clean(self) -> dict:
        from portfolio.limits import LimitReached, check_wallet_limit

        try:
            check_wallet_limit(self.owner)
        except LimitReached as exc:
            self.add_error(None, exc)
        return super().clean()

    def clean_address(self) -> str:
        family = self.data.get(self.add_prefix("family"))
        text = self.cleaned_data["address"]
        if family == "evm" and looks_like_ens_name(text):
            check_name(text)  # syntax only: the service resolves it, in one lookup, when adding
        elif family in dict(FAMILY_CHOICES):
            self.parsed = parse_watch_only(family, text)
        elif secret_kind(text):  # no valid family chosen: still never accept a secret
            raise ValidationError(WATCH_ONLY_MESSAGE, code="secret")
        return text

    def clean_label(self) -> str:
        label = self.cleaned_data["label"]
        refuse_secret_text(label)
        return label


class WalletEditForm(SecretBlankingForm):
    label = forms.CharField(max_length=80, required=False)
    portfolios = IdMultipleChoiceField(queryset=Portfolio.objects.none(), required=False, widget=forms.CheckboxSelectMultiple)
    gap_limit = forms.IntegerField(min_value=1, max_value=MAX_GAP_LIMIT, label="Gap limit (Bitcoin extended keys)")
    secret_checked = ("label",)

    def __init__(self, *args, wallet: Wallet, **kwargs):
        kwargs.setdefault(
            "initial", {"label": wallet.label, "portfolios": list(wallet.portfolios.all()), "gap_limit": wallet.gap_limit}
        )
        super().__init__(*args, **kwargs)
        self.wallet = wallet
        self.fields["portfolios"].queryset = Portfolio.objects.filter(owner_id=wallet.owner_id)
        if not self.fields["portfolios"].queryset.exists():
            del self.fields["portfolios"]
        if wallet.kind != Wallet.EXTENDED_KEY:
            del self.fields["gap_limit"]

    def clean_label(self) -> str:
        label = self.cleaned_data["label"]
        refuse_secret_text(label)
        return label


class PortfolioForm(SecretBlankingForm):
    name = forms.CharField(max_length=80)
    wallets = IdMultipleChoiceField(queryset=Wallet.objects.none(), required=False, widget=QuickCheckboxSelectMultiple)
    secret_checked = ("name",)

    def __init__(self, *args, owner, portfolio: Portfolio | None = None, **kwargs):
        if portfolio is not None:
            kwargs.setdefault("initial", {"name": portfolio.name, "wallets": list(portfolio.wallets.all())})
        super().__init__(*args, **kwargs)
        self.owner = owner
        self.portfolio = portfolio
        self.fields["wallets"].queryset = Wallet.objects.filter(owner=owner)

    def clean(self) -> dict:
        from portfolio.limits import LimitReached, check_portfolio_limit

        if self.portfolio is None:
            try:
                check_portfolio_limit(self.owner)
            except LimitReached as exc:
                self.add_error(None, exc)
        return super().clean()

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        refuse_secret_text(name)
        return name
