"""Holding, NftItem and Position read their height and time from their WalletChain unless stale (sync writes only changed rows)."""

from django.db import migrations, models


def read_at_the_wallet_chain(apps, schema_editor):
    """Rows as the last good sync read them take that sync's height and time from their WalletChain
    from now on, so the first sync after the upgrade does not rewrite every row; stale ones keep theirs."""
    for name in ("Holding", "NftItem", "Position"):
        rows = apps.get_model("portfolio", name).objects.all()
        if name == "Holding":
            rows = rows.exclude(details__stale=True)
        rows.update(height=None, fetched_at=None)


class Migration(migrations.Migration):

    dependencies = [
        ('portfolio', '0003_value_totals'),
    ]

    operations = [
        migrations.AlterField(
            model_name='holding',
            name='fetched_at',
            field=models.DateTimeField(blank=True, help_text="Empty: the WalletChain's last good sync.", null=True),
        ),
        migrations.AlterField(
            model_name='holding',
            name='height',
            field=models.BigIntegerField(blank=True, help_text="Empty: the WalletChain's (see ReadAt).", null=True),
        ),
        migrations.AlterField(
            model_name='nftitem',
            name='fetched_at',
            field=models.DateTimeField(blank=True, help_text="Empty: the WalletChain's last good sync.", null=True),
        ),
        migrations.AlterField(
            model_name='nftitem',
            name='height',
            field=models.BigIntegerField(blank=True, help_text="Empty: the WalletChain's (see ReadAt).", null=True),
        ),
        migrations.AlterField(
            model_name='position',
            name='fetched_at',
            field=models.DateTimeField(blank=True, help_text="Empty: the WalletChain's last good sync.", null=True),
        ),
        migrations.AlterField(
            model_name='position',
            name='height',
            field=models.BigIntegerField(blank=True, help_text="Empty: the WalletChain's (see ReadAt).", null=True),
        ),
        migrations.RunPython(read_at_the_wallet_chain, migrations.RunPython.noop),
    ]
