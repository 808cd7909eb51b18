"""Human labels for technical values: RPC endpoints by host (never a URL), sync errors as a short reason,
DeFi protocols by their display name; chart data as a JSON attribute."""

from __future__ import annotations

import ipaddress
import json
import re
from urllib.parse import urlsplit

from django import template
from django.core.serializers.json import DjangoJSONEncoder

from chains.registry import protocol_label as _protocol_label

register = template.Library()

# (pattern, reason) in order: the first match names the failure; the full message stays in a title.
_REASONS = (
    (re.compile(r"timed? ?out|timeout|did not answer", re.I), "the endpoint did not answer in time"),
    (re.compile(r"\b429\b|rate.?limit|too many requests", re.I), "the endpoint is rate-limiting us; retried later"),
    (re.compile(r"connection refused|connect(ion)? ?error|cannot connect|could not connect|name or service not known|unreachable", re.I),
     "the endpoint could not be reached"),
    (re.compile(r"\b5\d\d\b|bad gateway|service unavailable|internal server error", re.I), "the endpoint answered with a server error"),
    (re.compile(r"\b40[13]\b|unauthori[sz]ed|forbidden|api key", re.I), "the endpoint refused our request (API key?)"),
    (re.compile(r"another chain|wrong chain|chain id", re.I), "the endpoint serves another chain"),
    (re.compile(r"no (enabled )?endpoint", re.I), "the chain has no enabled endpoint"),
    (re.compile(r"stall|requeue", re.I), "no worker finished it in time"),
)
_URL = re.compile(r"\bhttps?://\S*[^\s.,;:)]")  # a sentence's full stop after a URL is not part of it


@register.filter
def short_reason(error) -> str:
    """A sync error as a short reason a user can act on; an unknown one as its first sentence, URLs removed."""
    text = str(error or "").strip()
    if not text:
        return ""
    for pattern, reason in _REASONS:
        if pattern.search(text):
            return reason
    first = _URL.sub("the endpoint", text).split(". ")[0].rstrip(".")
    return first if len(first) <= 120 else first[:119] + "…"


@register.filter
def endpoint_name(url) -> str:
    """An RPC endpoint by its host (``eth.llamarpc.com``), a local one as ``local node :8545``: no scheme,
    path, key or query ever reaches the page."""
    text = str(url or "").strip()
    if not text:
        return ""
    try:
        parts = urlsplit(text if "://" in text else f"http://{text}")
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return "endpoint"
    if not host:
        return "endpoint"
    try:
        local = host == "localhost" or ipaddress.ip_address(host).is_loopback or ipaddress.ip_address(host).is_private
    except ValueError:
        local = host.endswith((".local", ".internal", ".lan"))
    if local:
        return f"local node :{port}" if port else "local node"
    return host


@register.filter
def protocol_label(slug) -> str:
    """``aave_v3`` -> ``Aave V3``, ``solana-stake`` -> ``Solana native staking``."""
    return _protocol_label(str(slug or ""))


@register.filter
def json_attr(value) -> str:
    """JSON for a data-* attribute (autoescaping makes it safe there); chart data that htmx can swap in."""
    return json.dumps(value, cls=DjangoJSONEncoder, separators=(",", ":"))
