"""The exam's times on the order (arrived, started, completed: the reports' turnaround), filled in from
the order events of the orders booked before; and the Department lead role, who reads the reports."""

from django.db import migrations, models

# The latest event of each kind, as services.order_transition stamps the column from now on.
BACKFILL = """
UPDATE scheduling_order SET
    arrived_at = (SELECT MAX(e.at) FROM scheduling_orderevent e
                  WHERE e.order_id = scheduling_order.id AND e.kind = 'arrived'),
    started_at = (SELECT MAX(e.at) FROM scheduling_orderevent e
                  WHERE e.order_id = scheduling_order.id AND e.kind = 'started'),
    completed_at = (SELECT MAX(e.at) FROM scheduling_orderevent e
                    WHERE e.order_id = scheduling_order.id AND e.kind = 'completed')
WHERE status IN ('ARRIVED', 'IN_PROGRESS', 'COMPLETED')
"""


def department_lead(apps, schema_editor):
    apps.get_model("auth", "Group").objects.get_or_create(name="Department lead")


def no_department_lead(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name="Department lead").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("scheduling", "0016_patient_id_search"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.AddField(
            model_name="historicalorder",
            name="arrived_at",
            field=models.DateTimeField(blank=True, editable=False, null=True, verbose_name="arrived at"),
        ),
        migrations.AddField(
            model_name="historicalorder",
            name="completed_at",
            field=models.DateTimeField(blank=True, editable=False, null=True, verbose_name="completed at"),
        ),
        migrations.AddField(
            model_name="historicalorder",
            name="started_at",
            field=models.DateTimeField(blank=True, editable=False, null=True, verbose_name="started at"),
        ),
        migrations.AddField(
            model_name="order",
            name="arrived_at",
            field=models.DateTimeField(blank=True, editable=False, null=True, verbose_name="arrived at"),
        ),
        migrations.AddField(
            model_name="order",
            name="completed_at",
            field=models.DateTimeField(blank=True, editable=False, null=True, verbose_name="completed at"),
        ),
        migrations.AddField(
            model_name="order",
            name="started_at",
            field=models.DateTimeField(blank=True, editable=False, null=True, verbose_name="started at"),
        ),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
        migrations.RunPython(department_lead, no_department_lead),
    ]
