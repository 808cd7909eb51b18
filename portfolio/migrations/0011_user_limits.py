"""Per-user limits staff may raise: Profile.max_wallets and Profile.max_portfolios (empty: site default)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("portfolio", "0010_endpoint_health")]

    operations = [
        migrations.AddField(
            model_name="profile",
            name="max_wallets",
            field=models.PositiveIntegerField(blank=True, help_text="Empty: the site default (MAX_WALLETS_PER_USER).", null=True),
        ),
        migrations.AddField(
            model_name="profile",
            name="max_portfolios",
            field=models.PositiveIntegerField(blank=True, help_text="Empty: the site default (MAX_PORTFOLIOS_PER_USER).", null=True),
        ),
    ]
