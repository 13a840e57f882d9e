"""The admin role gets the permissions of the models added since annotation 0011 (pair scoring runs, reliabilities
and flags, the queue order, the versions' raw judgements): every permission of the three apps, as 0011 did."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ADMIN_APPS = ("annotation", "datasets", "training")


def grant_admin_everything(apps, schema_editor):
    # Permissions are normally created after all migrations ran; the group needs them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    admin = Group.objects.filter(name="admin").first()
    if admin is not None:
        admin.permissions.add(*Permission.objects.filter(content_type__app_label__in=ADMIN_APPS))


class Migration(migrations.Migration):
    dependencies = [
        ("training", "0003_pair_scoring"),
        ("annotation", "0013_queue_rank"),
        ("datasets", "0003_raw_judgements"),
    ]

    operations = [migrations.RunPython(grant_admin_everything, migrations.RunPython.noop)]
