"""Cost of the REST API's personal-token auth and request limits per request, against the browser session
measured in the same run (interleaved rounds, the order of the three cases rotated per round).

    .venv/bin/python bench/api_auth.py [--rounds 7] [--requests 100]

In-process Django test client on a throwaway test database; GET /api/v1/chains (one small query of its
own), so the auth and the limits are most of what is measured. Writes bench/results/api_auth.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portfolio.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402

from bench._common import interleaved, write_results  # noqa: E402

PATH = "/api/v1/chains"


def run_round(client: Client, headers: dict, n: int, limits: bool) -> None:
    settings.API_RATE_PER_MINUTE_TOKEN = settings.API_RATE_PER_MINUTE_USER = 10**9 if limits else 0
    for _ in range(n):
        response = client.get(PATH, **headers)
        assert response.status_code == 200, response.status_code


def queries_per_request(client: Client, headers: dict) -> int:
    with CaptureQueriesContext(connection) as ctx:
        client.get(PATH, **headers)
    return len(ctx.captured_queries) - 1  # minus the endpoint's own SELECT of chains


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()

    from django.contrib.auth import get_user_model
    from django.test.runner import DiscoverRunner

    from portfolio.models import ApiToken
    from portfolio.services.tokens import do_create_api_token

    setup_test_environment()
    runner = DiscoverRunner(verbosity=0)
    old = runner.setup_databases()
    try:
        user = get_user_model().objects.create_user("bench", "bench@example.com", "x" * 20)
        _, token = do_create_api_token(user, "bench", ApiToken.READ)
        session = Client()
        session.force_login(user)
        script = Client()
        bearer = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        cases = {
            "session, no limits (baseline)": (session, {}, False),
            "token, no limits": (script, bearer, False),
            "token, with limits": (script, bearer, True),
        }
        for client, headers, limits in cases.values():  # warm-up (and the once-a-minute last-used write)
            run_round(client, headers, 20, limits)
        seconds = interleaved({name: (lambda case=case: run_round(*case[:2], args.requests, case[2]))
                               for name, case in cases.items()}, args.rounds)
        times = {name: [s / args.requests * 1e6 for s in values] for name, values in seconds.items()}  # us per request
        settings.API_RATE_PER_MINUTE_TOKEN = settings.API_RATE_PER_MINUTE_USER = 0
        figures: dict[str, tuple[float, str]] = {}
        for name, values in times.items():
            figures[f"{name}: median"] = (statistics.median(values), "us/request")
            figures[f"{name}: min"] = (min(values), "us/request")
            figures[f"{name}: max"] = (max(values), "us/request")
        base = statistics.median(times["session, no limits (baseline)"])
        figures["token with limits / session"] = (statistics.median(times["token, with limits"]) / base, "x")
        figures["auth queries per request, session"] = (queries_per_request(session, {}), "queries")
        figures["auth queries per request, token"] = (queries_per_request(script, bearer), "queries")
        write_results("api_auth", figures, sizes={"rounds": args.rounds, "requests_per_round": args.requests,
                                                  "database": connection.vendor})
    finally:
        runner.teardown_databases(old)


if __name__ == "__main__":
    main()
