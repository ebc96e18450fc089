"""The reports' index: orders by scheduled start with the columns the reports aggregate (Order.Meta).

A year of a hospital's orders is then read from the index alone (an index-only scan) instead of some
65,000 pages of the table. On PostgreSQL built CONCURRENTLY, as 0008's (about 10 s at two million
orders, during which bookings go on), so the migration is not atomic; SQLite builds it the ordinary way
(without the INCLUDE columns, which it does not have).
"""

from django.db import migrations, models
from django.db.models import Q

INDEX = models.Index(
    fields=["scheduled_start"],
    include=[
        "status", "room", "procedure", "scheduled_end", "booked_at", "arrived_at", "started_at", "completed_at",
    ],
    # Partial: the reports list their statuses, none of them REQUESTED, so PostgreSQL proves this from
    # their WHERE; the overlap checks (status <> CANCELLED) cannot, and keep order_room_start_idx.
    condition=~Q(status="REQUESTED"),
    name="order_report_idx",
)  # fmt: skip


def forwards(apps, schema_editor):
    model = apps.get_model("scheduling", "Order")
    if schema_editor.connection.vendor != "postgresql":
        schema_editor.add_index(model, INDEX)
        return
    sql = str(INDEX.create_sql(model, schema_editor, concurrently=True))
    # IF NOT EXISTS: a build interrupted half-way is run again rather than failing on the name.
    schema_editor.execute(
        sql.replace("CREATE INDEX CONCURRENTLY", "CREATE INDEX CONCURRENTLY IF NOT EXISTS", 1)
    )


def backwards(apps, schema_editor):
    model = apps.get_model("scheduling", "Order")
    concurrently = schema_editor.connection.vendor == "postgresql"
    schema_editor.execute(INDEX.remove_sql(model, schema_editor, concurrently=concurrently))


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("scheduling", "0017_order_exam_times_department_lead")]
    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(forwards, backwards)],
            state_operations=[migrations.AddIndex(model_name="order", index=INDEX)],
        )
    ]
