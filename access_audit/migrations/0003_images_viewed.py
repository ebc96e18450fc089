"""The image page's reads are on record: AccessAction IMAGES_VIEWED (one event per view of a series)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("access_audit", "0002_admin_view_permission"),
    ]

    operations = [
        migrations.AlterField(
            model_name="accessevent",
            name="action",
            field=models.CharField(
                choices=[
                    ("patient_viewed", "Viewed patient"),
                    ("order_viewed", "Viewed order"),
                    ("slip_printed", "Printed appointment slip"),
                    ("wl_downloaded", "Downloaded .wl file"),
                    ("wl_dump_viewed", "Viewed .wl dump"),
                    ("modality_query", "Ran a query as a modality"),
                    ("station_find", "DICOM C-FIND by a station"),
                    ("images_viewed", "Viewed images"),
                ],
                max_length=32,
                verbose_name="action",
            ),
        ),
    ]
