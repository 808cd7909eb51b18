"""User accounts: the per-user Profile every user has (sign-up itself is allauth's)."""

from __future__ import annotations

import logging

from allauth.account.signals import user_signed_up
from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from portfolio.models import Profile

log = logging.getLogger(__name__)


def ensure_profile(user) -> Profile:
    """The user's Profile, created with the default quote currency if missing."""
    profile, _ = Profile.objects.get_or_create(user=user, defaults={"quote_currency": settings.DEFAULT_QUOTE_CURRENCY})
    return profile


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="portfolio_create_profile")
def create_profile_for_new_user(sender, instance, created: bool, raw: bool = False, **kwargs) -> None:
    """Every user gets a Profile, however created (sign-up, admin, createsuperuser)."""
    if created and not raw:
        ensure_profile(instance)


@receiver(user_signed_up, dispatch_uid="portfolio_log_sign_up")
def log_sign_up(sender, request, user, **kwargs) -> None:
    log.info("user signed up", extra={"user_id": user.pk})
