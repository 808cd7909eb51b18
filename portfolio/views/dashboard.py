"""Dashboard (placeholder until the UI work lands)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "portfolio/dashboard.html", {})
