"""Seed the default chains (mainnets enabled, local devnets disabled) with their RPC endpoints."""

from django.db import migrations


def forwards(apps, schema_editor):
    from portfolio.seed import seed_chains

    seed_chains(apps.get_model("portfolio", "Chain"), apps.get_model("portfolio", "RpcEndpoint"), apps.get_model("portfolio", "Asset"))


class Migration(migrations.Migration):
    dependencies = [("portfolio", "0001_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
