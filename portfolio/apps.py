"""App config."""

from django.apps import AppConfig


class PortfolioConfig(AppConfig):
    name = "portfolio"
    verbose_name = "Portfolio"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from portfolio import endpoint_health, freshness, holdings_cache, lookups, metrics, pair_values, pgtimestamps, totals, tracing  # noqa: F401 (lookups: registers __any)
        from portfolio.services import accounts  # noqa: F401  (connects the Profile signal)
        from portfolio.sync import fingerprint

        pgtimestamps.install()  # UTC timestamps read from PostgreSQL parsed at C speed
        metrics.install()  # RPC requests, errors, latency and waits from chains/ (its observer hook)
        endpoint_health.install()  # the admin's per-endpoint error rate, latency and last error
        totals.install()  # per-asset totals of each scope follow membership changes and deletions
        pair_values.install()  # an asset edited (spam, decimals, price sources): every cached pair value recomputed
        holdings_cache.install()  # an asset edited: every kept holdings list recomputed
        freshness.install()  # a portfolio's cached freshness follows its membership changes
        fingerprint.install()  # a holding, NFT or position saved through the ORM is diffed in full at the next sync
        tracing.setup_from_settings()  # OpenTelemetry spans, only with OTEL_EXPORTER_OTLP_ENDPOINT
