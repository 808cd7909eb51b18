"""The portfolio tracker: Django project and app in one package."""

from portfolio.celery import app as celery_app

__all__ = ("celery_app",)
