"""Django's ModelBackend, reading whether the user may label together with the user.

Every judgement is two labeling API calls, and each loads the session's user and then checks
`annotation.label_pairs`, for which ModelBackend loads all the user's permissions and those of their
groups: two more queries per call. Here the user row comes with that one answer in a single query;
any other permission goes through ModelBackend unchanged.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connections, router

LABEL_PERMISSION = "annotation.label_pairs"


def _user_sql() -> str:
    user = get_user_model()
    columns = ", ".join(f"u.{field.column}" for field in user._meta.concrete_fields)
    user_perms = user.user_permissions.through._meta.db_table
    user_groups = user.groups.through._meta.db_table
    group_perms = Group.permissions.through._meta.db_table
    perm, content_type = Permission._meta.db_table, ContentType._meta.db_table
    app_label, codename = LABEL_PERMISSION.split(".")
    granted = f"""
        JOIN {perm} p ON p.id = x.permission_id
        JOIN {content_type} ct ON ct.id = p.content_type_id
        WHERE p.codename = '{codename}' AND ct.app_label = '{app_label}'"""
    return f"""
SELECT {columns},
       u.is_superuser
       OR EXISTS (SELECT 1 FROM {user_perms} x {granted} AND x.user_id = u.id)
       OR EXISTS (SELECT 1 FROM {user_groups} g JOIN {group_perms} x ON x.group_id = g.group_id {granted}
                  AND g.user_id = u.id)
FROM {user._meta.db_table} u WHERE u.{user._meta.pk.column} = %s
"""


class LabelingModelBackend(ModelBackend):
    _sql: str | None = None

    def get_user(self, user_id):
        model = get_user_model()
        if self._sql is None:
            type(self)._sql = _user_sql()
        database = router.db_for_read(model)
        with connections[database].cursor() as cursor:
            cursor.execute(self._sql, [user_id])
            row = cursor.fetchone()
        if row is None:
            return None
        names = [field.attname for field in model._meta.concrete_fields]
        user = model.from_db(database, names, row[:-1])
        user._can_label = row[-1]
        return user if self.user_can_authenticate(user) else None

    def has_perm(self, user_obj, perm, obj=None):
        if perm == LABEL_PERMISSION and obj is None and hasattr(user_obj, "_can_label"):
            return user_obj.is_active and user_obj._can_label
        return super().has_perm(user_obj, perm, obj)
