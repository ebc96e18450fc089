from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("scheduling", "0007_patient_search")]
    operations = []
