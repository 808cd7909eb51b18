"""The holdings table's rows, an asset's icon and a price's source as HTML built in Python: a page of 100
rows through the template engine (three includes, a dozen filters and lookups per row) was most of
the page's time. The numbers go through the same filters as everywhere else (``money.py``); every
value is escaped by ``format_html``.

    {% load holding_rows %}
    {% holding_rows rows scope.currency %}    the <tr>s of a holdings page (row: views.holdings)
    {% asset_icon row.asset %}                logo, or the symbol's initials
    {% price_source row %}                    where a row's price came from, and how old it is
"""

from __future__ import annotations

from django import template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import template_localtime

from portfolio.templatetags.money import (
    ago, amount, initials, money, money_signed, pct, pct_width, price, signclass, source_label, source_name,
)

register = template.Library()


@register.simple_tag
def asset_icon(asset) -> SafeString:
    """``icon_url`` set by ``icons.with_icons``: the stored logo, else the symbol's initials."""
    if getattr(asset, "icon_url", ""):
        inner = format_html('<img src="{}" alt="" width="28" height="28" loading="lazy" decoding="async">',
                            asset.icon_url)
    else:
        inner = format_html("{}", initials(asset.symbol))
    return format_html('<span class="asset-icon" aria-hidden="true">{}</span>', inner)


@register.simple_tag
def price_source(row) -> SafeString:
    """A row's ``price_source`` (kind, feed) and ``price_at`` (machine-readable, full and as an age)."""
    name, label = source_name(row.price_source), source_label(row.price_source)
    at = template_localtime(row.price_at)
    # The date filter's "c" and "Y-m-d H:i:s e", without its formatter per call (a third of a row's time).
    iso, full = (at.isoformat(), f"{at:%Y-%m-%d %H:%M:%S} {at.tzname() or ''}") if at is not None else ("", "")
    feed = format_html('<br><span class="price-feed">{}</span>', label) if label and label != name else ""
    return format_html('<div class="subtle price-source" title="{}" data-testid="price-source">{}, <time datetime="{}" '
                       'title="{}">{}</time>{}</div>', row.price_source, name, iso, full, ago(row.price_at), feed)


def _price_cell(row, currency: str) -> SafeString:
    if row.price is None:
        return mark_safe("" if row.asset.is_spam else '<span class="badge badge-warn" '
                         'title="No price source has a price for this asset">unpriced</span>')
    stale = ('<span class="badge badge-warn" title="Price older than the freshness limit: left out of the totals">'
             "stale · unpriced</span>") if row.price_stale else ""
    return format_html("{}{}{}", price(row.price, currency), price_source(row), mark_safe(stale))


def _cost_basis_cell(basis, currency: str) -> SafeString:
    """activity.add_cost_basis's figure: unrealised profit, average cost and cost; or why it is incomplete."""
    if basis is None:
        inner = mark_safe('<span class="subtle">—</span>')
    elif not basis.complete:
        inner = format_html('<span class="badge badge-warn" title="{}">incomplete</span>'
                            '<div class="subtle cost-basis-why">{}</div>', basis.incomplete, basis.incomplete)
    else:
        if basis.unrealised is None:
            gain = mark_safe('<span class="subtle">—</span>')
        else:
            gain = format_html('<span class="{}">{}</span>', signclass(basis.unrealised),
                               money_signed(basis.unrealised, currency))
            if basis.unrealised_pct is not None:
                gain = format_html('{} <span class="{}">{}</span>', gain, signclass(basis.unrealised_pct),
                                   pct(basis.unrealised_pct))
        inner = format_html('{}<div class="subtle" title="Average cost per unit (average-cost method) · cost of the '
                            'amount held">avg {} · cost {}</div>', gain, price(basis.average_cost, currency),
                            money(basis.cost, currency))
    return format_html('<td class="num hide-sm" data-testid="cost-basis">{}</td>', inner)


def _row(row, currency: str, query: str) -> SafeString:
    asset = row.asset
    href = f"{reverse('holding_wallets', args=[asset.pk])}?{query}"
    spam = (format_html(' <span class="badge badge-spam" title="{}">spam</span>', asset.spam_reason)
            if asset.is_spam else "")
    return format_html(
        '<tr class="holding-row{}" data-testid="holding-row">\n'
        '<td>\n'
        '<a class="asset-cell" href="{}" hx-get="{}" hx-target="closest tr" hx-swap="afterend" hx-trigger="click once" '
        'title="Wallets holding {}" data-testid="holding-expand">\n'
        '<span class="expander" aria-hidden="true">▸</span>\n'
        '{}\n'
        '<span class="asset-name"><span class="sym">{}{}</span><span class="full" title="{}">{}</span></span>\n'
        '</a>\n'
        '<div class="subtle">{} wallet{}</div>\n'
        '</td>\n'
        '<td class="hide-sm">{}</td>\n'
        '<td class="num" title="{} {}">{}</td>\n'
        '<td class="num hide-sm">{}</td>\n'
        '<td class="num">{}</td>\n'
        '<td class="num hide-sm {}">{}</td>\n'
        '<td class="num hide-sm">{}<div class="share-bar" aria-hidden="true">'
        '<span style="width: {}%"></span></div></td>\n'
        '{}\n'
        '</tr>\n',
        " spam" if asset.is_spam else "", href, href, asset.symbol, asset_icon(asset), asset.symbol, spam, asset.name,
        asset.name, row.holders, "" if row.holders == 1 else "s", asset.chain.name, amount(row.amount, "exact"),
        asset.symbol, amount(row.amount, 8), _price_cell(row, currency), money(row.value, currency),
        signclass(row.change_24h), pct(row.change_24h), pct(row.share, "unsigned"), pct_width(row.share),
        _cost_basis_cell(row.cost_basis, currency))


@register.simple_tag(takes_context=True)
def holding_rows(context, rows, currency: str) -> SafeString:
    """The <tr> of each holding row; the expand link keeps the page's query (its filters)."""
    query = context["request"].GET.urlencode()
    return mark_safe("".join(_row(row, currency, query) for row in rows))
