"""Dashboard: net worth, performance over a range, chart, allocation and data freshness for a portfolio
(or "All wallets"). Also the scope helpers the holdings, NFT and positions pages share."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from portfolio import queries
from portfolio.models import Portfolio, SyncRun, Wallet, WalletChain
from portfolio.services.accounts import ensure_profile
from portfolio.services.alerts import open_alerts

RANGES = ("24h", "7d", "30d", "90d", "1y", "all")
DEFAULT_RANGE = "30d"
ALLOCATION_KINDS = (("asset", "Asset"), ("chain", "Chain"), ("wallet", "Wallet"), ("kind", "Kind"))


@dataclass
class Scope:
    """What a page shows: the user's portfolio (None = all wallets), its wallet ids, the user's currency."""

    portfolio: Portfolio | None
    wallet_ids: list[int]
    currency: str
    profile: object
    portfolios: list[Portfolio] = field(default_factory=list)
    wallet_count: int = 0

    @property
    def name(self) -> str:
        return self.portfolio.name if self.portfolio else "All wallets"

    @property
    def query_value(self) -> str:
        return str(self.portfolio.pk) if self.portfolio else ""


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text not in (None, "") else None
    except (TypeError, ValueError):
        raise Http404("no such portfolio") from None


def resolve_scope(request: HttpRequest, portfolio_id: int | None = None) -> Scope:
    """The scope of a page: ``portfolio_id`` from the URL, else ``?portfolio=`` (another user's is a 404)."""
    if portfolio_id is None:
        portfolio_id = _int_or_none(request.GET.get("portfolio"))
    portfolio = get_object_or_404(Portfolio, pk=portfolio_id, owner=request.user) if portfolio_id is not None else None
    profile = ensure_profile(request.user)
    return Scope(
        portfolio=portfolio,
        wallet_ids=queries.scope_wallet_ids(request.user, portfolio.pk if portfolio else None),
        currency=profile.quote_currency,
        profile=profile,
        portfolios=list(Portfolio.objects.filter(owner=request.user)),
        wallet_count=Wallet.objects.filter(owner=request.user).count(),
    )


def sync_state(user, wallet_ids: list[int]) -> dict:
    """Whether the scope has data yet, and the latest manual sync run still in flight (for live progress)."""
    chains = WalletChain.objects.filter(wallet_id__in=wallet_ids, wallet__owner=user)
    total = chains.count()
    synced = chains.filter(last_ok_at__isnull=False).count()
    active = chains.filter(status__in=[WalletChain.QUEUED, WalletChain.RUNNING]).count()
    run = (
        SyncRun.objects.filter(owner=user, status__in=[SyncRun.QUEUED, SyncRun.RUNNING]).order_by("-created_at").first()
    )
    return {"chains_total": total, "chains_synced": synced, "chains_active": active, "never_synced": total > 0 and synced == 0, "run": run}


def freshness_rows(user, wallet_ids: list[int]) -> list[dict]:
    """Per chain: how many wallets, the oldest good read, the highest block read, and failures."""
    rows: dict[int, dict] = {}
    chains = (
        WalletChain.objects.filter(wallet_id__in=wallet_ids, wallet__owner=user)
        .select_related("chain", "wallet")
        .order_by("chain__sort_order", "chain__name", "wallet_id")
    )
    for wc in chains:
        row = rows.setdefault(
            wc.chain_id,
            {"chain": wc.chain, "wallets": 0, "oldest_ok": None, "never": 0, "height": None, "errors": [], "active": 0},
        )
        row["wallets"] += 1
        if wc.last_ok_at is None:
            row["never"] += 1
        elif row["oldest_ok"] is None or wc.last_ok_at < row["oldest_ok"]:
            row["oldest_ok"] = wc.last_ok_at
        if wc.height is not None and (row["height"] is None or wc.height > row["height"]):
            row["height"] = wc.height
        if wc.status == WalletChain.FAILED and wc.last_error:
            row["errors"].append(f"{wc.wallet}: {wc.last_error}")
        if wc.status in (WalletChain.QUEUED, WalletChain.RUNNING):
            row["active"] += 1
    return list(rows.values())


@require_GET
def dashboard(request: HttpRequest, portfolio_id: int | None = None) -> HttpResponse:
    scope = resolve_scope(request, portfolio_id)
    range_key = request.GET.get("range", DEFAULT_RANGE)
    if range_key not in RANGES:
        range_key = DEFAULT_RANGE
    if portfolio_id is None and "portfolio" in request.GET:
        # The switcher's plain GET form lands here: send it to the portfolio's own URL.
        target = reverse("portfolio_dashboard", args=[scope.portfolio.pk]) if scope.portfolio else reverse("dashboard")
        return redirect(f"{target}?range={range_key}")
    summary = queries.dashboard_summary(request.user, scope.wallet_ids, scope.currency, range_key) if scope.wallet_ids else None
    context = {
        "scope": scope,
        "summary": summary,
        "range_key": range_key,
        "ranges": RANGES,
        "allocation_kinds": ALLOCATION_KINDS,
        "sync": sync_state(request.user, scope.wallet_ids),
        "health_alerts": open_alerts(request.user, scope.wallet_ids),
        "freshness": freshness_rows(request.user, scope.wallet_ids),
        "nav_active": "dashboard",
        "chart": _chart_payload(summary, scope.currency) if summary else None,
        "allocations": _allocations(summary) if summary else [],
    }
    if request.htmx and request.htmx.target == "performance":
        return render(request, "portfolio/dashboard.html#performance", context)
    return render(request, "portfolio/dashboard.html", context)


def _chart_payload(summary, currency: str) -> dict:
    """Series as strings (exact decimals travel as text; the chart parses them only to draw)."""
    from portfolio.templatetags.money import money

    series = list(getattr(summary, "series", None) or [])
    span = (series[-1][0] - series[0][0]).total_seconds() if len(series) > 1 else 0
    label_format = "%H:%M" if span <= 2 * 86400 else ("%d %b" if span <= 400 * 86400 else "%b %Y")
    return {
        "labels": [at.strftime(label_format) for at, _ in series],
        "values": [None if value is None else format(value, "f") for _, value in series],
        "display": [money(value, currency) for _, value in series],
        "currency": currency,
    }


def _allocations(summary) -> list[dict]:
    """One block per allocation kind: slices for the table, and the chart payload."""
    from portfolio.templatetags.money import money

    raw = getattr(summary, "allocation", None) or {}
    out = []
    for key, title in ALLOCATION_KINDS:
        slices = list(raw.get(key, []) if isinstance(raw, dict) else getattr(raw, key, []))
        top = slices[:7]
        rest = slices[7:]
        chart_labels = [str(s.label) for s in top]
        chart_values = [format(s.value, "f") for s in top]
        chart_display = [money(s.value, summary.currency if hasattr(summary, "currency") else "USD") for s in top]
        if rest:
            other = sum((s.value for s in rest), start=type(rest[0].value)(0))
            chart_labels.append("Other")
            chart_values.append(format(other, "f"))
            chart_display.append(money(other))
        out.append(
            {
                "key": key,
                "chart_id": f"alloc-{key}",
                "title": title,
                "slices": slices,
                "chart": {"labels": chart_labels, "values": chart_values, "display": chart_display},
            }
        )
    return out
