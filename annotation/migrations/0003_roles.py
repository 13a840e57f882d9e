"""Create the annotator, reviewer and admin groups with their permissions (see annotation/roles.py)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ANNOTATOR = ("annotation.label_pairs", "annotation.filter_prompts")
REVIEWER = ANNOTATOR + (
    "annotation.resolve_prompt_disagreements",
    "annotation.adjudicate_pairs",
    "annotation.view_quality",
    "annotation.view_prompt",
    "annotation.view_pair",
    "annotation.view_judgement",
    "annotation.change_pair",
    "annotation.add_adjudication",
    "annotation.change_adjudication",
    "annotation.view_adjudication",
)
ADMIN_APPS = ("annotation", "datasets", "training")
ADMIN_EXTRA = ("auth.view_user", "auth.change_user", "auth.add_user", "auth.view_group")


def _ensure_permissions(apps):
    # Permissions are normally created after all migrations ran; the groups need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None


def _permissions(Permission, codes):
    found = []
    for code in codes:
        app_label, codename = code.split(".")
        found.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return found


def create_roles(apps, schema_editor):
    _ensure_permissions(apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    roles = {
        "annotator": _permissions(Permission, ANNOTATOR),
        "reviewer": _permissions(Permission, REVIEWER),
        "admin": list(Permission.objects.filter(content_type__app_label__in=ADMIN_APPS))
        + _permissions(Permission, ADMIN_EXTRA),
    }
    for name, permissions in roles.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(permissions)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["annotator", "reviewer", "admin"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0002_seed_categories"),
        ("datasets", "0001_initial"),
        ("training", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(create_roles, remove_roles)]
