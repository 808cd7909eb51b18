"""URL routes, grouped by area (each area's views live in portfolio/views/<area>.py)."""

from django.contrib import admin
from django.urls import include, path

from portfolio import api
from portfolio.views import accounts, dashboard, holdings, nfts, ops, positions, settings, sync, wallets

urlpatterns = [
    # operations
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    # accounts (Django's auth views: login, logout, password_change*, password_reset*)
    path("accounts/signup/", accounts.signup, name="signup"),
    path("accounts/", include("django.contrib.auth.urls")),
    # wallets and portfolios
    path("wallets/", wallets.wallet_list, name="wallets"),
    path("wallets/<int:wallet_id>/", wallets.wallet_detail, name="wallet_detail"),
    path("wallets/<int:wallet_id>/edit/", wallets.wallet_edit, name="wallet_edit"),
    path("wallets/<int:wallet_id>/delete/", wallets.wallet_delete, name="wallet_delete"),
    path("portfolios/", wallets.portfolio_list, name="portfolios"),
    path("portfolios/<int:portfolio_id>/", wallets.portfolio_detail, name="portfolio_detail"),
    path("portfolios/<int:portfolio_id>/edit/", wallets.portfolio_edit, name="portfolio_edit"),
    path("portfolios/<int:portfolio_id>/delete/", wallets.portfolio_delete, name="portfolio_delete"),
    # dashboard and holdings
    path("", dashboard.dashboard, name="dashboard"),
    path("portfolios/<int:portfolio_id>/dashboard/", dashboard.dashboard, name="portfolio_dashboard"),
    path("holdings/", holdings.holdings, name="holdings"),
    path("holdings.csv", holdings.holdings_csv, name="holdings_csv"),
    path("nfts/", nfts.nfts, name="nfts"),
    path("positions/", positions.positions, name="positions"),
    path("settings/", settings.account_settings, name="settings"),
    path("settings/tokens/", settings.api_token_create, name="api_token_create"),
    path("settings/tokens/<int:token_id>/revoke/", settings.api_token_revoke, name="api_token_revoke"),
    # sync: refresh and progress
    path("sync/refresh/", sync.refresh, name="refresh"),
    path("sync/<int:run_id>/status", sync.sync_status, name="sync_status"),
    # REST API v1 (portfolio/api.py; docs at /api/v1/docs)
    path("api/v1/", api.url_patterns()),
]
