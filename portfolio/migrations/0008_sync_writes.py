"""Rows read at their WalletChain's height and time unless stale (syncs write only changed rows); value columns wide enough for uint256 amounts times prices."""

from decimal import Decimal

from django.db import migrations, models

import portfolio.fields

SYNCED = ("holding", "nftitem", "position")


def read_at_the_wallet_chain(apps, schema_editor):
    """Rows as the last good sync read them take that sync's height and time from their WalletChain
    from now on, so the first sync after the upgrade does not rewrite every row; stale ones keep theirs."""
    for name in ("Holding", "NftItem", "Position"):
        rows = apps.get_model("portfolio", name).objects.all()
        if name == "Holding":
            rows = rows.exclude(details__stale=True)
        rows.update(height=None, fetched_at=None)


def _value(null: bool):
    if null:
        return portfolio.fields.ExactDecimalField(blank=True, decimal_places=18, max_digits=100, null=True)
    return portfolio.fields.ExactDecimalField(decimal_places=18, default=Decimal("0"), max_digits=100)


class Migration(migrations.Migration):

    dependencies = [
        ("portfolio", "0007_chain_genesis_hash"),
    ]

    operations = [
        *[migrations.AlterField(model_name=model, name="fetched_at",
                                field=models.DateTimeField(blank=True, help_text="Empty: the WalletChain's last good sync.", null=True))
          for model in SYNCED],
        *[migrations.AlterField(model_name=model, name="height",
                                field=models.BigIntegerField(blank=True, help_text="Empty: the WalletChain's (see ReadAt).", null=True))
          for model in SYNCED],
        *[migrations.AlterField(model_name=model, name=name, field=_value(model == "valuepoint"))
          for model in ("valuepoint", "walletvalue", "scopevalue") for name in ("value", "flow_value", "market_value")],
        migrations.RunPython(read_at_the_wallet_chain, migrations.RunPython.noop),
    ]
