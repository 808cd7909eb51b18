"""URL routes."""

from django.contrib import admin
from django.urls import include, path

from portfolio import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("", views.dashboard, name="dashboard"),
]
