"""A room is never double-booked, enforced by PostgreSQL itself.

An exclusion constraint over (room, [start, end)) for every order that is not cancelled. SQLite has no
such constraint; there the locked check in services.order_book is the guard, and it runs on both.
The constraint is not in Order.Meta because Django would then try to validate it on SQLite too.
"""

from django.db import migrations

CREATE = """
CREATE EXTENSION IF NOT EXISTS btree_gist;
ALTER TABLE scheduling_order ADD CONSTRAINT order_room_no_overlap
    EXCLUDE USING gist (room_id WITH =, tstzrange(scheduled_start, scheduled_end, '[)') WITH &&)
    WHERE (status <> 'CANCELLED');
"""
DROP = "ALTER TABLE scheduling_order DROP CONSTRAINT IF EXISTS order_room_no_overlap;"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("scheduling", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
