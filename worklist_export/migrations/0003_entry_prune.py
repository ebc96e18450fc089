"""Partial indexes on the entries that name a file or hold an error, instead of one on every path.

After five years there is an entry for each of two million past orders, all with an empty path: an
index on path held two million copies of '' that no query asks for, while reconciliation and the
Worklist problems page look only for the entries with a file or an error, a few thousand at most.
The past orders' entries are kept (not pruned): the order page shows when the order was exported and
removed from the worklist. Building the partial indexes reads the table once (about a second at two
million rows) and keeps nothing of the rest.
"""

from django.db import migrations, models
from django.db.models import Q


class Migration(migrations.Migration):
    dependencies = [("worklist_export", "0002_entry_file_stamp")]
    operations = [
        migrations.RemoveIndex(model_name="worklistentry", name="worklist_ex_path_6387aa_idx"),
        migrations.AddIndex(
            model_name="worklistentry",
            index=models.Index(fields=["path"], condition=~Q(path=""), name="entry_with_file_idx"),
        ),
        migrations.AddIndex(
            model_name="worklistentry",
            index=models.Index(fields=["order"], condition=~Q(last_error=""), name="entry_failed_idx"),
        ),
    ]
