"""A local server speaking the CoinGecko wire format (stdlib ThreadingHTTPServer on 127.0.0.1).

    with FakeCoinGecko(prices={"ethereum": "2500.5"}) as cg:
        settings.COINGECKO_API_URL = cg.url
Set ``cg.rate_limited = True`` to answer 429 with ``Retry-After``; ``cg.requests`` records (path, query, headers).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class FakeCoinGecko:
    def __init__(self, *, prices=None, token_prices=None, charts=None, rates=None, api_key: str | None = None):
        self.prices: dict[str, str] = dict(prices or {})  # coin id -> usd price (string, sent as a JSON number)
        self.token_prices: dict[str, dict[str, str]] = {k: {a.lower(): p for a, p in v.items()} for k, v in (token_prices or {}).items()}
        self.charts: dict[str, list[tuple[int, str]]] = dict(charts or {})  # coin id -> [(ms, price)]
        self.rates: dict[str, str] = dict(rates or {"usd": "60000", "eur": "54000", "gbp": "48000", "chf": "53000", "jpy": "9000000"})
        self.api_key = api_key
        self.rate_limited = False
        self.requests: list[tuple[str, dict[str, list[str]], dict[str, str]]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/v3"

    def __enter__(self) -> "FakeCoinGecko":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, str]:
        def arg(name):
            return (query.get(name) or [""])[0]

        vs = arg("vs_currencies") or "usd"
        if path == "/api/v3/simple/price":
            ids = [i for i in arg("ids").split(",") if i]
            return 200, "{" + ",".join(f'"{i}":{{"{vs}":{self.prices[i]}}}' for i in ids if i in self.prices) + "}"
        if path.startswith("/api/v3/simple/token_price/"):
            table = self.token_prices.get(path.rsplit("/", 1)[1], {})
            addrs = [a.lower() for a in arg("contract_addresses").split(",") if a]
            return 200, "{" + ",".join(f'"{a}":{{"{vs}":{table[a]}}}' for a in addrs if a in table) + "}"
        if path.startswith("/api/v3/coins/") and path.endswith(("/market_chart", "/market_chart/range")):
            coin = path.split("/")[4]
            if coin not in self.charts:
                return 404, '{"error":"coin not found"}'
            start, end = (int(arg("from")) * 1000, int(arg("to")) * 1000) if path.endswith("/range") else (0, 2**63)
            rows = ",".join(f"[{ms},{p}]" for ms, p in self.charts[coin] if start <= ms <= end)
            return 200, f'{{"prices":[{rows}],"market_caps":[],"total_volumes":[]}}'
        if path == "/api/v3/exchange_rates":
            body = ",".join(f'"{c}":{{"name":"{c}","unit":"","value":{v},"type":"{"crypto" if c == "btc" else "fiat"}"}}'
                            for c, v in self.rates.items())
            return 200, f'{{"rates":{{{body}}}}}'
        return 404, '{"error":"not found"}'

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (stdlib name)
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                fake.requests.append((parts.path, query, {k.lower(): v for k, v in self.headers.items()}))
                if fake.rate_limited:
                    status, body, extra = 429, '{"status":{"error_code":429,"error_message":"rate limited"}}', {"Retry-After": "30"}
                else:
                    status, body = fake.answer(parts.path, query)
                    extra = {}
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        return Handler
