from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("worklist_export", "0002_entry_file_stamp")]
    operations = []
