"""Indexes for the order list, the admin and the overlap checks at two million orders.

Each ends in (scheduled_start, id), the lists' sort: see Order.Meta.indexes. They replace the
(room, scheduled_start) and (status, scheduled_start) indexes of 0001, which they cover.

On PostgreSQL they are built CONCURRENTLY (so the migration is not atomic): some 15 s each at two
million orders, during which bookings must go on. SQLite builds them the ordinary way.
"""

from django.db import migrations, models

INDEXES = [
    models.Index(fields=["scheduled_start", "id"], include=["procedure"], name="order_start_idx"),
    models.Index(fields=["room", "scheduled_start", "id"], name="order_room_start_idx"),
    models.Index(fields=["status", "scheduled_start", "id"], name="order_status_start_idx"),
]
REPLACED = [
    models.Index(fields=["room", "scheduled_start"], name="scheduling__room_id_eac55d_idx"),
    models.Index(fields=["status", "scheduled_start"], name="scheduling__status_451d0e_idx"),
]


def _swap(schema_editor, model, add, remove):
    if schema_editor.connection.vendor != "postgresql":
        for index in add:
            schema_editor.add_index(model, index)
        for index in remove:
            schema_editor.remove_index(model, index)
        return
    for index in add:
        sql = str(index.create_sql(model, schema_editor, concurrently=True))
        # IF NOT EXISTS: a build interrupted half-way is run again rather than failing on the name.
        schema_editor.execute(
            sql.replace("CREATE INDEX CONCURRENTLY", "CREATE INDEX CONCURRENTLY IF NOT EXISTS", 1)
        )
    for index in remove:
        schema_editor.execute(index.remove_sql(model, schema_editor, concurrently=True))


def forwards(apps, schema_editor):
    _swap(schema_editor, apps.get_model("scheduling", "Order"), INDEXES, REPLACED)


def backwards(apps, schema_editor):
    _swap(schema_editor, apps.get_model("scheduling", "Order"), REPLACED, INDEXES)


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("scheduling", "0007_patient_search")]
    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(forwards, backwards)],
            state_operations=[
                *(migrations.AddIndex(model_name="order", index=index) for index in INDEXES),
                *(migrations.RemoveIndex(model_name="order", name=index.name) for index in REPLACED),
            ],
        )
    ]
