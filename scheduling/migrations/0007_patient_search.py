from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("scheduling", "0006_patient_order_version")]
    operations = []
