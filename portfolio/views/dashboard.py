"""Dashboard: net worth, performance over a range, chart, allocation and data freshness for a portfolio
(or "All wallets"). Also the scope helpers the holdings, NFT and positions pages share."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Q
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
SLICES_SHOWN = 8  # per allocation: the table's rows; the chart shows 7 and "Other"


@dataclass
class Scope:
    """What a page shows: the user's portfolio (None = all wallets), its wallet ids (``queries.AllWallets``,
    ids unread, for the dashboard's "All wallets"), the user's currency."""

    portfolio: Portfolio | None
    wallet_ids: list[int] | queries.AllWallets
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


def resolve_scope(request: HttpRequest, portfolio_id: int | None = None, *, read_all_ids: bool = True) -> Scope:
    """The scope of a page: ``portfolio_id`` from the URL, else ``?portfolio=`` (another user's is a 404).
    ``read_all_ids=False``: "All wallets" as ``queries.AllWallets`` (its ids not read)."""
    if portfolio_id is None:
        portfolio_id = _int_or_none(request.GET.get("portfolio"))
    portfolio = get_object_or_404(Portfolio, pk=portfolio_id, owner=request.user) if portfolio_id is not None else None
    profile = ensure_profile(request.user)
    if portfolio is None and not read_all_ids:
        wallet_ids = queries.scope_all(request.user)
        wallet_count = wallet_ids.count
    else:
        wallet_ids = queries.scope_wallet_ids(request.user, portfolio.pk if portfolio else None)
        wallet_count = Wallet.objects.filter(owner=request.user).count()
    return Scope(
        portfolio=portfolio,
        wallet_ids=wallet_ids,
        currency=profile.quote_currency,
        profile=profile,
        portfolios=list(Portfolio.objects.filter(owner=request.user)),
        wallet_count=wallet_count,
    )


def _scope_chains(user, wallet_ids: list[int], all_wallets: bool):
    """The scope's WalletChains: by owner for "All wallets" (no id list), else by the ids."""
    qs = WalletChain.objects.filter(wallet__owner=user)
    return qs if all_wallets else qs.filter(wallet_id__in=wallet_ids)


def sync_state(user, wallet_ids: list[int], *, all_wallets: bool = False, freshness: list[dict] | None = None) -> dict:
    """Whether the scope has data yet, and the latest manual sync run still in flight (for live
    progress). Counts from ``freshness`` rows when the page has them, else one aggregate; plus the run."""
    if freshness is None:
        counts = _scope_chains(user, wallet_ids, all_wallets).aggregate(
            total=Count("id"), synced=Count("id", filter=Q(last_ok_at__isnull=False)),
            active=Count("id", filter=Q(status__in=[WalletChain.QUEUED, WalletChain.RUNNING])))
    else:
        total = sum(r["wallets"] for r in freshness)
        counts = {"total": total, "synced": total - sum(r["never"] for r in freshness),
                  "active": sum(r["active"] for r in freshness)}
    total, synced = counts["total"], counts["synced"]
    run = (
        SyncRun.objects.filter(owner=user, status__in=[SyncRun.QUEUED, SyncRun.RUNNING]).order_by("-created_at").first()
    )
    return {"chains_total": total, "chains_synced": synced, "chains_active": counts["active"],
            "never_synced": total > 0 and synced == 0, "run": run}


ERRORS_SHOWN = 3  # per chain: the count says how many failed, a few messages say why


def freshness_rows(user, wallet_ids: list[int], *, all_wallets: bool = False,
                   freshness: list[queries.ChainFreshness] | None = None) -> list[dict]:
    """Per chain: how many wallets, the oldest good read, the highest block read, how many failed (with
    a few of their errors) and how many are syncing. Counts grouped in SQL (``queries.chain_freshness``,
    or the summary's ``freshness`` already read), never a WalletChain instance or its cursors JSON per
    wallet; one more bounded query for error messages when something failed."""
    if freshness is None:
        freshness = queries.chain_freshness(user, wallet_ids, all_wallets)
    rows = {f.chain.pk: {"chain": f.chain, "wallets": f.wallets, "oldest_ok": f.oldest_ok, "never": f.never,
                         "height": f.height, "failed": f.failed, "active": f.active, "errors": []} for f in freshness}
    if any(f.failed for f in freshness):
        failing = (_scope_chains(user, wallet_ids, all_wallets).filter(status=WalletChain.FAILED).exclude(last_error="")
                   .order_by("chain_id", "wallet_id")
                   .values_list("chain_id", "wallet__label", "wallet__address", "last_error")[:ERRORS_SHOWN * len(rows)])
        for chain_id, label, address, error in failing:
            if len(rows[chain_id]["errors"]) < ERRORS_SHOWN:
                name = label or (address if len(address) <= 16 else f"{address[:8]}…{address[-6:]}")
                rows[chain_id]["errors"].append({"wallet": name, "error": error})
    return list(rows.values())


def scope_summary(user, scope: Scope, range_key: str):
    """The dashboard figures, as the API's /summary has them (``queries.dashboard_summary``: the
    materialised series; a scope whose series is being built shows its wallets' latest totals), the
    slices beyond those shown left unnamed (no label read per wallet of a large scope)."""
    if not scope.wallet_ids:
        return None
    return queries.dashboard_summary(user, scope.wallet_ids, scope.currency, range_key, labelled=SLICES_SHOWN)


@require_GET
def dashboard(request: HttpRequest, portfolio_id: int | None = None) -> HttpResponse:
    scope = resolve_scope(request, portfolio_id, read_all_ids=False)
    range_key = request.GET.get("range", DEFAULT_RANGE)
    if range_key not in RANGES:
        range_key = DEFAULT_RANGE
    if portfolio_id is None and "portfolio" in request.GET:
        # The switcher's plain GET form lands here: send it to the portfolio's own URL.
        target = reverse("portfolio_dashboard", args=[scope.portfolio.pk]) if scope.portfolio else reverse("dashboard")
        return redirect(f"{target}?range={range_key}")
    summary = scope_summary(request.user, scope, range_key)
    all_wallets = scope.portfolio is None
    freshness = freshness_rows(request.user, scope.wallet_ids, all_wallets=all_wallets,
                               freshness=summary.freshness if summary and summary.freshness else None)
    context = {
        "scope": scope,
        "summary": summary,
        "range_key": range_key,
        "ranges": RANGES,
        "allocation_kinds": ALLOCATION_KINDS,
        "sync": sync_state(request.user, scope.wallet_ids, all_wallets=all_wallets, freshness=freshness),
        "health_alerts": open_alerts(request.user, scope.wallet_ids, all_wallets=all_wallets),
        "freshness": freshness,
        "nav_active": "dashboard",
        "chart": _chart_payload(summary, scope.currency) if summary else None,
        "allocations": _allocations(summary, scope) if summary else [],
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


def _more_url(key: str, scope: Scope) -> str:
    """Where a block's "and N more" leads: the full list of what it counts."""
    query = f"?portfolio={scope.portfolio.pk}" if scope.portfolio else ""
    if key in ("asset", "chain"):
        return reverse("holdings") + query
    if key == "wallet":
        return reverse("portfolio_detail", args=[scope.portfolio.pk]) if scope.portfolio else reverse("wallets")
    return ""


def _allocations(summary, scope: Scope) -> list[dict]:
    """One block per allocation kind: slices for the table, and the chart payload."""
    from portfolio.templatetags.money import money

    raw = getattr(summary, "allocation", None) or {}
    out = []
    for key, title in ALLOCATION_KINDS:
        slices = list(raw.get(key, []) if isinstance(raw, dict) else getattr(raw, key, []))
        top = slices[:SLICES_SHOWN - 1]
        rest = slices[SLICES_SHOWN - 1:]
        chart_labels = [str(s.label) for s in top]
        chart_values = [format(s.value, "f") for s in top]
        chart_display = [money(s.value, scope.currency) for s in top]
        if rest:
            other = sum((s.value for s in rest), start=type(rest[0].value)(0))
            chart_labels.append("Other")
            chart_values.append(format(other, "f"))
            chart_display.append(money(other, scope.currency))
        out.append(
            {
                "key": key,
                "chart_id": f"alloc-{key}",
                "title": title,
                "slices": slices,
                "more_url": _more_url(key, scope),
                "chart": {"labels": chart_labels, "values": chart_values, "display": chart_display},
            }
        )
    return out
