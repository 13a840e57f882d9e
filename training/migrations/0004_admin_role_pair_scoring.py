"""The admin role gets the permissions of the pair scoring models (training 0003), as annotation 0011 gave it
those of every model before: the pair scoring page and its start form check them."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

MODELS = ("pairscoringrun", "pairscore")


def grant_admin_pair_scoring(apps, schema_editor):
    # Permissions are normally created after all migrations ran; the group needs them now.
    app_config = apps.get_app_config("training")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    admin = Group.objects.filter(name="admin").first()
    if admin is not None:
        admin.permissions.add(
            *Permission.objects.filter(content_type__app_label="training", content_type__model__in=MODELS)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("training", "0003_pair_scoring"),
        ("annotation", "0011_admin_role_guidelines"),
    ]

    operations = [migrations.RunPython(grant_admin_pair_scoring, migrations.RunPython.noop)]
