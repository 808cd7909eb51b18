"""ENS: a registry per EVM chain (Ethereum's seeded), the name a wallet was added by and its verified reverse name."""

from django.db import migrations, models

# ENS's registry on Ethereum mainnet (the same address ENSRegistryWithFallback has had since 2020).
MAINNET_ENS_REGISTRY = "0x00000000000C2E074eC69A0dFb2997BA6C7d2e1e"


def seed_registry(apps, schema_editor):
    Chain = apps.get_model("portfolio", "Chain")
    Chain.objects.filter(family="evm", chain_id=1, ens_registry="").update(ens_registry=MAINNET_ENS_REGISTRY)


class Migration(migrations.Migration):
    dependencies = [("portfolio", "0011_user_limits")]
    operations = [
        migrations.AddField(
            model_name="chain",
            name="ens_registry",
            field=models.CharField(
                blank=True, max_length=42,
                help_text="EVM: ENS registry for names typed as wallets (the first enabled chain with one resolves them). "
                          "Ethereum: 0x00000000000C2E074eC69A0dFb2997BA6C7d2e1e.",
            ),
        ),
        migrations.AddField(
            model_name="wallet",
            name="ens_name",
            field=models.CharField(blank=True, max_length=255, help_text="EVM: the ENS name this wallet was added by (resolved then)."),
        ),
        migrations.AddField(
            model_name="wallet",
            name="primary_name",
            field=models.CharField(
                blank=True, max_length=255,
                help_text="EVM: its ENS reverse name, only when that name resolves back to it (kept fresh by the sync).",
            ),
        ),
        migrations.RunPython(seed_registry, migrations.RunPython.noop),
    ]
