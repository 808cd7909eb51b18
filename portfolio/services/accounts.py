"""User accounts: sign-up and the per-user Profile every user has."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from portfolio.models import Profile

log = logging.getLogger(__name__)


def ensure_profile(user) -> Profile:
    """The user's Profile, created with the default quote currency if missing."""
    profile, _ = Profile.objects.get_or_create(user=user, defaults={"quote_currency": settings.DEFAULT_QUOTE_CURRENCY})
    return profile


def do_sign_up(username: str, email: str, password: str):
    """Create a user (and their Profile). The password must already be validated (the sign-up form does)."""
    with transaction.atomic():
        user = get_user_model().objects.create_user(username=username, email=email, password=password)
        ensure_profile(user)
    log.info("user signed up", extra={"user_id": user.pk})
    return user


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="portfolio_create_profile")
def create_profile_for_new_user(sender, instance, created: bool, raw: bool = False, **kwargs) -> None:
    """Every user gets a Profile, however created (sign-up, admin, createsuperuser)."""
    if created and not raw:
        ensure_profile(instance)
