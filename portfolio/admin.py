"""Django admin (staff only): chains and endpoints, assets, wallets, sync state, prices. Never shows a secret."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from chains.base import ChainError
from chains.endpoints import EndpointBroken
from chains.identity import check_endpoint

from portfolio import holdings_cache, models, pair_values
from portfolio.services.tokens import do_revoke_api_token
from portfolio.services.wallets import ensure_wallet_chains


def _enable_chains(request: HttpRequest, chains) -> None:
    created = sum(ensure_wallet_chains(chain) for chain in chains)
    if created:
        messages.info(request, f"{created} existing wallet(s) are now tracked on the enabled chain(s).")


class RpcEndpointForm(forms.ModelForm):
    """Checks an enabled endpoint's chain identity (chain id, genesis block) when it is saved: another
    chain's endpoint is refused with the reason; one that cannot be reached is saved with a warning
    (``identity_warning``), since the admin may be offline from where the workers run."""

    identity_warning = ""

    class Meta:
        model = models.RpcEndpoint
        fields = ("url", "priority", "enabled", "rate_per_s", "auth_header_name", "auth_header_env", "timeout_s")

    def clean(self):
        data = super().clean()
        try:
            chain = data.get("chain") or self.instance.chain  # an inline's instance has its parent chain set
        except models.Chain.DoesNotExist:
            chain = None
        if not (data.get("enabled") and data.get("url") and chain is not None and not self.errors):
            return data
        if chain.family == "evm" and chain.chain_id is None:
            return data  # the chain form says what is missing
        probe = models.RpcEndpoint(chain=chain, **{k: data.get(k) for k in RpcEndpointForm.Meta.fields if k in data})
        probe.timeout_s = min(probe.timeout_s or 10, 10)
        try:
            check_endpoint(chain.to_config(), probe.to_config())
        except EndpointBroken as exc:
            raise forms.ValidationError({"url": f"This endpoint serves another chain: {exc.detail}"}) from None
        except ChainError as exc:
            self.identity_warning = f"{probe.label}: saved, but it could not be reached to check its chain ({exc.detail})"
        return data


def _warn_identity(request: HttpRequest, forms_) -> None:
    for form in forms_:
        if getattr(form, "identity_warning", ""):
            messages.warning(request, form.identity_warning)


class RpcEndpointInline(admin.TabularInline):
    model = models.RpcEndpoint
    form = RpcEndpointForm
    extra = 0
    fields = ("url", "priority", "enabled", "rate_per_s", "auth_header_name", "auth_header_env", "timeout_s", "health")
    readonly_fields = ("health",)

    @admin.display(description="health")
    def health(self, obj: models.RpcEndpoint) -> str:
        return endpoint_health_text(obj)


def endpoint_health_text(obj: models.RpcEndpoint) -> str:
    """Recent error rate, latency and last error, as the admin shows them."""
    if not obj.health_updated_at:
        return "no requests yet"
    rate = obj.recent_errors / obj.recent_requests if obj.recent_requests else 0.0
    text = f"{rate:.0%} errors, {obj.latency_ms or 0:.0f} ms"
    if obj.last_error:
        text += f"; last error {timezone.localtime(obj.last_error_at):%Y-%m-%d %H:%M}: {obj.last_error}"
    return text


class ProtocolDeploymentInline(admin.TabularInline):
    model = models.ProtocolDeployment
    extra = 0
    fields = ("protocol", "contracts", "enabled")


@admin.register(models.Chain)
class ChainAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "family", "network", "chain_id", "native_symbol", "enabled", "sync_interval", "wallet_count")
    list_filter = ("family", "network", "enabled")
    search_fields = ("name", "slug", "native_symbol", "chain_id")
    list_editable = ("enabled",)
    ordering = ("sort_order", "name")
    inlines = [RpcEndpointInline, ProtocolDeploymentInline]
    actions = ["enable_chains", "disable_chains"]
    fieldsets = (
        (None, {"fields": ("slug", "name", "family", "network", "chain_id", "enabled", "sort_order")}),
        ("Native asset", {"fields": ("native_symbol", "native_name", "native_decimals", "native_coingecko_id", "coingecko_platform")}),
        ("Explorer links", {"fields": ("explorer_address_url", "explorer_tx_url", "explorer_token_url")}),
        ("Sync", {"fields": ("sync_interval", "multicall_address", "log_scan_start", "log_range")}),
        ("ENS", {"fields": ("ens_registry",)}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_wallet_count=Count("wallet_chains"))

    @admin.display(description="wallets", ordering="_wallet_count")
    def wallet_count(self, obj: models.Chain) -> int:
        return obj._wallet_count

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        if obj.enabled:
            _enable_chains(request, [obj])

    def save_formset(self, request, form, formset, change) -> None:
        super().save_formset(request, form, formset, change)
        _warn_identity(request, formset.forms)

    @admin.action(description="Enable selected chains (existing wallets get tracked on them)")
    def enable_chains(self, request: HttpRequest, queryset: QuerySet) -> None:
        queryset.update(enabled=True)
        _enable_chains(request, queryset.model.objects.filter(pk__in=queryset.values("pk")))
        self.message_user(request, "Chains enabled.", messages.SUCCESS)

    @admin.action(description="Disable selected chains")
    def disable_chains(self, request: HttpRequest, queryset: QuerySet) -> None:
        n = queryset.update(enabled=False)
        self.message_user(request, f"{n} chain(s) disabled.", messages.SUCCESS)


@admin.register(models.RpcEndpoint)
class RpcEndpointAdmin(admin.ModelAdmin):
    form = RpcEndpointForm
    list_display = ("chain", "endpoint_label", "priority", "enabled", "rate_per_s", "auth_header_env", "error_rate", "latency",
                    "last_error_short")
    list_filter = ("enabled", "chain__family", "chain")
    search_fields = ("url", "chain__name", "chain__slug", "auth_header_env")
    list_select_related = ("chain",)
    actions = ["enable_endpoints", "disable_endpoints"]
    fields = ("chain", "url", "priority", "enabled", "rate_per_s", "auth_header_name", "auth_header_env", "timeout_s", "health")
    readonly_fields = ("health",)

    def get_form(self, request, obj=None, **kwargs):
        kwargs["fields"] = ("chain", *RpcEndpointForm.Meta.fields)
        return super().get_form(request, obj, **kwargs)

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        _warn_identity(request, [form])

    @admin.display(description="health")
    def health(self, obj: models.RpcEndpoint) -> str:
        return endpoint_health_text(obj)

    @admin.display(description="errors (recent)")
    def error_rate(self, obj: models.RpcEndpoint) -> str:
        return f"{obj.recent_errors / obj.recent_requests:.0%}" if obj.recent_requests else "-"

    @admin.display(description="latency")
    def latency(self, obj: models.RpcEndpoint) -> str:
        return f"{obj.latency_ms:.0f} ms" if obj.latency_ms is not None else "-"

    @admin.display(description="last error")
    def last_error_short(self, obj: models.RpcEndpoint) -> str:
        return obj.last_error[:80]

    @admin.display(description="URL (credentials hidden)")
    def endpoint_label(self, obj: models.RpcEndpoint) -> str:
        return obj.label

    @admin.action(description="Enable selected endpoints")
    def enable_endpoints(self, request: HttpRequest, queryset: QuerySet) -> None:
        self.message_user(request, f"{queryset.update(enabled=True)} endpoint(s) enabled.", messages.SUCCESS)

    @admin.action(description="Disable selected endpoints")
    def disable_endpoints(self, request: HttpRequest, queryset: QuerySet) -> None:
        self.message_user(request, f"{queryset.update(enabled=False)} endpoint(s) disabled.", messages.SUCCESS)


def _assets_edited() -> None:
    """A bulk update sends no signal: the kept holdings lists and pair values are recomputed at once."""
    holdings_cache.assets_changed()
    pair_values.forget()


@admin.register(models.Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = ("symbol", "name", "chain", "kind", "standard", "contract", "decimals", "listed", "is_spam", "coingecko_id")
    list_filter = ("kind", "standard", "listed", "is_spam", "chain")
    search_fields = ("symbol", "name", "address", "coingecko_id")
    list_select_related = ("chain",)
    actions = ["mark_spam", "mark_not_spam"]

    @admin.display(description="Address or mint", ordering="address")
    def contract(self, obj: models.Asset) -> str:
        """Shortened so the list fits a laptop screen; the full address is on the asset's page and in the search."""
        from portfolio.templatetags.money import short_address

        return short_address(obj.address) if obj.address else "-"

    @admin.action(description="Mark as spam (hidden from totals)")
    def mark_spam(self, request: HttpRequest, queryset: QuerySet) -> None:
        n = queryset.update(is_spam=True, spam_reason="marked by an administrator")
        _assets_edited()
        self.message_user(request, f"{n} asset(s) marked as spam.", messages.SUCCESS)

    @admin.action(description="Mark as not spam")
    def mark_not_spam(self, request: HttpRequest, queryset: QuerySet) -> None:
        n = queryset.update(is_spam=False, spam_reason="")
        _assets_edited()
        self.message_user(request, f"{n} asset(s) marked as not spam.", messages.SUCCESS)


class WalletChainInline(admin.TabularInline):
    model = models.WalletChain
    extra = 0
    fields = ("chain", "status", "last_ok_at", "height", "endpoint", "last_error")
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.Wallet)
class WalletAdmin(admin.ModelAdmin):
    list_display = ("__str__", "owner", "family", "kind", "short_address", "script_type", "created_at")
    list_filter = ("family", "kind", "script_type")
    search_fields = ("label", "address", "ens_name", "primary_name", "owner__username", "owner__email")
    list_select_related = ("owner",)
    readonly_fields = ("owner", "family", "address", "kind", "created_at", "ens_name", "primary_name")
    fields = ("owner", "family", "address", "kind", "script_type", "gap_limit", "label", "created_at", "ens_name", "primary_name")
    inlines = [WalletChainInline]

    def has_add_permission(self, request) -> bool:
        return False  # wallets are added by their owners, through the validating form


@admin.register(models.Portfolio)
class PortfolioAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "created_at")
    search_fields = ("name", "owner__username")
    list_select_related = ("owner",)
    filter_horizontal = ("wallets",)


@admin.register(models.WalletChain)
class WalletChainAdmin(admin.ModelAdmin):
    list_display = ("wallet", "chain", "status", "last_ok_at", "last_attempt_at", "height", "next_due_at")
    list_filter = ("status", "chain")
    search_fields = ("wallet__label", "wallet__address", "wallet__owner__username")
    list_select_related = ("wallet", "chain")
    readonly_fields = ("wallet", "chain", "last_ok_at", "last_attempt_at", "claimed_at", "height", "endpoint", "cursors", "problems", "last_error")
    actions = ["sync_now"]

    def has_add_permission(self, request) -> bool:
        return False  # created with their wallet, or when a chain is enabled

    @admin.action(description="Make due now")
    def sync_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        from django.utils import timezone

        n = queryset.update(next_due_at=timezone.now())
        self.message_user(request, f"{n} wallet chain(s) are due at the next fan-out.", messages.SUCCESS)


class SyncRunItemInline(admin.TabularInline):
    model = models.SyncRunItem
    extra = 0
    fields = ("wallet_chain", "status", "attempts", "started_at", "finished_at", "height", "endpoint", "error")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    list_display = ("id", "owner", "portfolio", "wallet", "trigger", "status", "created_at", "finished_at")
    list_filter = ("status", "trigger")
    search_fields = ("owner__username", "error")
    list_select_related = ("owner", "portfolio", "wallet")
    date_hierarchy = "created_at"
    inlines = [SyncRunItemInline]


@admin.register(models.PricePoint)
class PricePointAdmin(admin.ModelAdmin):
    """Manual prices are added here (source "manual")."""

    list_display = ("asset", "currency", "price", "source", "at")
    list_filter = ("currency", "source", "asset__chain")
    search_fields = ("asset__symbol", "asset__name", "source")
    list_select_related = ("asset", "asset__chain")
    autocomplete_fields = ("asset",)
    date_hierarchy = "at"

    def get_changeform_initial_data(self, request):
        return {"source": "manual", **super().get_changeform_initial_data(request)}


@admin.register(models.FxRate)
class FxRateAdmin(admin.ModelAdmin):
    list_display = ("currency", "rate", "source", "at")
    list_filter = ("currency", "source")
    date_hierarchy = "at"


@admin.register(models.Profile)
class ProfileAdmin(admin.ModelAdmin):
    """Staff raise one user's limits here (empty: the site defaults, MAX_WALLETS_PER_USER and friends)."""

    list_display = ("user", "quote_currency", "dust_threshold", "max_wallets", "max_portfolios")
    list_filter = ("quote_currency",)
    search_fields = ("user__username", "user__email")


class ProfileInline(admin.StackedInline):
    model = models.Profile
    can_delete = False
    extra = 0


User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class PortfolioUserAdmin(UserAdmin):
    list_display = ("username", "email", "is_staff", "is_active", "wallet_count", "last_login", "date_joined")
    inlines = [ProfileInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_wallet_count=Count("wallets"))

    def get_inline_instances(self, request, obj=None):
        return super().get_inline_instances(request, obj) if obj else []  # the signal creates the Profile

    @admin.display(description="wallets", ordering="_wallet_count")
    def wallet_count(self, obj) -> int:
        return obj._wallet_count


@admin.register(models.ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Personal API tokens: staff can see which exist and revoke a leaked one; the token itself is never
    stored, so it can be neither shown nor created here (users create theirs in Settings)."""

    list_display = ("name", "owner", "prefix", "scope", "created_at", "expires_at", "last_used_at", "revoked_at")
    list_filter = ("scope",)
    search_fields = ("name", "prefix", "owner__username")
    readonly_fields = [f.name for f in models.ApiToken._meta.fields]
    actions = ["revoke_tokens"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet) -> None:
        for token in queryset:
            do_revoke_api_token(token)
        self.message_user(request, f"{queryset.count()} token(s) revoked.", messages.SUCCESS)
