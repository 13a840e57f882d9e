"""Django's ModelBackend, reading whether the user may label together with the user.

Every judgement is two labeling API calls, and each loads the session's user and then checks
`annotation.label_pairs`, for which ModelBackend loads all the user's permissions and those of their
groups: two more queries per call. On PostgreSQL the user row comes with that one answer in a single
query (through `mhp_user_has_perm`, migration 0004, which keeps its plan); any other permission, and
any other database, goes through ModelBackend unchanged.
"""

from functools import cache

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db import connections, router

LABEL_PERMISSION = "annotation.label_pairs"


@cache
def _user_sql() -> str:
    user = get_user_model()
    columns = ", ".join(f"u.{field.column}" for field in user._meta.concrete_fields)
    pk = user._meta.pk.column
    app_label, codename = LABEL_PERMISSION.split(".")
    return (
        f"SELECT {columns}, u.is_superuser OR mhp_user_has_perm(u.{pk}, '{app_label}', '{codename}') "
        f"FROM {user._meta.db_table} u WHERE u.{pk} = %s"
    )


@cache
def _user_fields() -> tuple[str, ...]:
    return tuple(field.attname for field in get_user_model()._meta.concrete_fields)


class LabelingModelBackend(ModelBackend):
    def get_user(self, user_id):
        model = get_user_model()
        database = router.db_for_read(model)
        if connections[database].vendor != "postgresql":
            return super().get_user(user_id)
        with connections[database].cursor() as cursor:
            cursor.execute(_user_sql(), [user_id])
            row = cursor.fetchone()
        if row is None:
            return None
        user = model.from_db(database, _user_fields(), row[:-1])
        user._can_label = row[-1]
        return user if self.user_can_authenticate(user) else None

    def has_perm(self, user_obj, perm, obj=None):
        if perm == LABEL_PERMISSION and obj is None and hasattr(user_obj, "_can_label"):
            return user_obj.is_active and user_obj._can_label
        return super().has_perm(user_obj, perm, obj)
