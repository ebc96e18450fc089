"""An entry's error as a code with parameters (worklist_export.problems), shown in the reader's language.

The rows already there keep their English text and get no code: the pages show the text as it is. The
database defaults fill the new columns of existing rows, and of rows inserted by SQL naming only the
older columns (bench/scale.py), without rewriting the table on PostgreSQL (a constant default).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("worklist_export", "0003_entry_prune"),
    ]

    operations = [
        migrations.AddField(
            model_name="worklistentry",
            name="last_error_code",
            field=models.CharField(
                blank=True, db_default="", default="", max_length=40, verbose_name="last error code"
            ),
        ),
        migrations.AddField(
            model_name="worklistentry",
            name="last_error_params",
            field=models.JSONField(
                blank=True,
                db_default=models.Value({}, models.JSONField()),
                default=dict,
                verbose_name="last error parameters",
            ),
        ),
    ]
