"""Room in every page of the sync's books for their next versions (PostgreSQL only).

Every sync rewrites each of its WalletChains twice (running, then its result) and each of its run
items twice (running, then finished), none of it in an indexed column. With full pages (the default
fillfactor of 100) PostgreSQL puts each new version on another page and adds an entry to every index
of the table (five on WalletChain, four on SyncRunItem); with room left in the page it makes a
heap-only tuple (HOT): no index is touched, and the dead version is pruned in place. Rows written
before this keep their pages until they are next rewritten or vacuumed. SQLite has no such setting."""

from django.db import migrations

TABLES = {"portfolio_walletchain": 50, "portfolio_syncrunitem": 50}


def set_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, fillfactor in TABLES.items():
        schema_editor.execute(f"ALTER TABLE {schema_editor.quote_name(table)} SET (fillfactor = {int(fillfactor)})")


def reset_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"ALTER TABLE {schema_editor.quote_name(table)} RESET (fillfactor)")


class Migration(migrations.Migration):

    dependencies = [
        ("portfolio", "0020_holdings_version"),
    ]

    operations = [migrations.RunPython(set_fillfactor, reset_fillfactor)]
