"""URL routes, grouped by area (each area's views live in portfolio/views/<area>.py)."""

from allauth.account import views as allauth_views
from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from portfolio import api
from portfolio.views import activity, dashboard, holdings, icons, nfts, ops, positions, settings, sync, wallets

admin.site.login = secure_admin_login(admin.site.login)

urlpatterns = [
    # operations
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    # Browsers ask for /favicon.ico on pages that name no icon (the admin, the API docs).
    path("favicon.ico", ops.favicon, name="favicon"),
    # The admin signs in through allauth's sign-in (same brakes, same second factor) and changes
    # passwords on allauth's page (same rate limit).
    path("admin/password_change/", RedirectView.as_view(pattern_name="account_change_password"), name="admin_password_change"),
    path("admin/", admin.site.urls),
    # accounts: django-allauth (sign-up, sign-in, sign-out, password change and reset, e-mail addresses,
    # second factor under accounts/2fa/). Short names for the three pages every template links to.
    path("accounts/login/", allauth_views.login, name="login"),
    path("accounts/logout/", allauth_views.logout, name="logout"),
    path("accounts/signup/", allauth_views.signup, name="signup"),
    path("accounts/", include("allauth.urls")),
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
    path("holdings/<int:asset_id>/wallets/", holdings.holding_wallets, name="holding_wallets"),
    path("activity/", activity.activity, name="activity"),
    path("activity.csv", activity.activity_csv, name="activity_csv"),
    path("nfts/", nfts.nfts, name="nfts"),
    path("icons/<int:asset_id>", icons.asset_icon, name="asset_icon"),
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
