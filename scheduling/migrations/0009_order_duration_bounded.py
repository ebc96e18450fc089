"""No order lasts longer than ORDER_LONGEST (720 minutes): the overlap queries rely on it.

`Order.objects.overlapping` looks for orders starting up to ORDER_LONGEST before a slot, so that its
range scan reads half a day of a room and not its whole history (issue 12). The validators held the
duration to 1-720 minutes; the database now holds it too, and on PostgreSQL the stored end as well
(scheduled_end is set by the services, never typed). The PostgreSQL constraint is added NOT VALID and
then validated, so the two million existing orders are checked without blocking bookings meanwhile.
"""

from django.db import migrations, models

PG_CHECK = "order_end_within_longest"
CREATE = f"""
ALTER TABLE scheduling_order ADD CONSTRAINT {PG_CHECK}
    CHECK (scheduled_end - scheduled_start <= interval '720 minutes') NOT VALID;
ALTER TABLE scheduling_order VALIDATE CONSTRAINT {PG_CHECK};
"""
DROP = f"ALTER TABLE scheduling_order DROP CONSTRAINT IF EXISTS {PG_CHECK};"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("scheduling", "0008_order_indexes")]
    operations = [
        migrations.AddConstraint(
            model_name="order",
            constraint=models.CheckConstraint(
                condition=models.Q(duration_minutes__gte=1, duration_minutes__lte=720),
                name="order_duration_bounded",
            ),
        ),
        migrations.RunPython(forwards, backwards),
    ]
