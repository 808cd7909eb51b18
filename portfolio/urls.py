"""URL routes, grouped by area (each area's views live in portfolio/views/<area>.py)."""

from django.contrib import admin
from django.urls import path

from portfolio.views import dashboard, ops

urlpatterns = [
    # operations
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    # dashboard and holdings
    path("", dashboard.dashboard, name="dashboard"),
]
