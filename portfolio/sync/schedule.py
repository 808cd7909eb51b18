"""The beat schedule: django-celery-beat rows created once on migrate, left alone after (admins edit them)."""

from __future__ import annotations

from django.conf import settings

from portfolio import jobs

PERIODIC_TASKS = [
    # name, task, schedule kind, schedule value
    ("chainfolio: sync due wallets", jobs.FANOUT_DUE, "every_s", "SYNC_FANOUT_SECONDS"),
    ("chainfolio: value snapshot", jobs.SNAPSHOT, "every_min", "SNAPSHOT_INTERVAL_MINUTES"),
    ("chainfolio: downsample history", jobs.DOWNSAMPLE, "daily", "03:15"),
    ("chainfolio: refresh prices", jobs.REFRESH_PRICES, "every_min", 5),
    ("chainfolio: reap stalled syncs", jobs.REAP_STALLED, "every_s", 60),
    ("chainfolio: prune old sync runs", jobs.PRUNE_RUNS, "daily", "03:45"),
    ("chainfolio: fetch asset logos", jobs.FETCH_ICONS, "every_min", 5),
]


def ensure_periodic_tasks() -> int:
    """Create the beat schedule rows (django-celery-beat) that are missing; never touch existing ones,
    so an admin's edits (interval, enabled) survive migrations. Returns how many were created."""
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    created = 0
    for name, task, kind, value in PERIODIC_TASKS:
        if PeriodicTask.objects.filter(name=name).exists():
            continue
        if kind == "daily":
            hour, minute = value.split(":")
            crontab, _ = CrontabSchedule.objects.get_or_create(minute=minute, hour=hour, day_of_week="*", day_of_month="*", month_of_year="*")
            PeriodicTask.objects.create(name=name, task=task, crontab=crontab, queue="default")
        else:
            amount = getattr(settings, value) if isinstance(value, str) else value
            period = IntervalSchedule.SECONDS if kind == "every_s" else IntervalSchedule.MINUTES
            interval, _ = IntervalSchedule.objects.get_or_create(every=int(amount), period=period)
            PeriodicTask.objects.create(name=name, task=task, interval=interval, queue="default")
        created += 1
    return created
