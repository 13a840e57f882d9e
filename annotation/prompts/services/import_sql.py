"""Lean SQL for bulk prompt work: the import's inserts and lookups, the near-duplicate marking.

`bulk_create` and `QuerySet.update` spent most of a 100,000-prompt import building SQL in Python
(per-field adaptation of every value, one UPDATE per near-duplicate group). Here each batch is one
statement whose values travel as a few parameters: arrays with `unnest` on PostgreSQL, a JSON
document read with `json_each` on SQLite. Values that are the same for every row
(status, timestamps, defaults) are adapted once, by the model fields themselves, so a field added to
`Prompt` with a default is filled here too. Only the two database backends the project runs on are
supported; every statement is also guarded by the table's constraints.
"""

import json

from django.db import connection
from django.db.models import Field

from annotation.models import Prompt, PromptStatus, RejectionReason

# Columns given per row, in this order; every other column gets the model's value for a new prompt.
ROW_COLUMNS = ("text", "normalized_text", "normalized_hash", "source", "source_id", "category_id", "subcategory_id")
_TABLE = Prompt._meta.db_table


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def _fields_by_column() -> dict[str, Field]:
    return {field.column: field for field in Prompt._meta.concrete_fields}


def _constant_columns(template: Prompt) -> tuple[list[Field], list]:
    """The columns not given per row and their database values for `template` (a new, unsaved prompt)."""
    fields = [f for f in Prompt._meta.concrete_fields if not f.primary_key and f.column not in ROW_COLUMNS]
    # pre_save fills auto_now / auto_now_add timestamps exactly as save() would.
    return fields, [field.get_db_prep_save(field.pre_save(template, add=True), connection) for field in fields]


def hashes_stored(digests: list[str]) -> set[str]:
    """The given normalised hashes that are in the table already (one indexed query)."""
    if not digests:
        return set()
    column = _quote("normalized_hash")
    with connection.cursor() as cursor:
        if _is_postgres():
            cursor.execute(f"SELECT {column} FROM {_quote(_TABLE)} WHERE {column} = ANY(%s::text[])", [digests])
        else:
            cursor.execute(
                f"SELECT {column} FROM {_quote(_TABLE)} WHERE {column} IN (SELECT value FROM json_each(%s))",
                [json.dumps(digests)],
            )
        return {row[0] for row in cursor.fetchall()}


def prompts_insert(rows: list[tuple], template: Prompt) -> list[int]:
    """Insert rows (values in ROW_COLUMNS order); returns the ids created.

    A row whose normalised hash is stored already (another import won the race) is skipped by
    `ON CONFLICT DO NOTHING`; any other constraint (a taken source id) raises IntegrityError.
    """
    if not rows:
        return []
    fields, constants = _constant_columns(template)
    columns = ", ".join(_quote(name) for name in (*ROW_COLUMNS, *(field.column for field in fields)))
    conflict = f"ON CONFLICT ({_quote('normalized_hash')}) DO NOTHING RETURNING {_quote('id')}"
    created: list[int] = []
    with connection.cursor() as cursor:
        if _is_postgres():
            by_column = _fields_by_column()
            arrays = ", ".join(f"%s::{by_column[name].cast_db_type(connection)}[]" for name in ROW_COLUMNS)
            casts = ", ".join(f"%s::{field.cast_db_type(connection)}" for field in fields)
            cursor.execute(
                f"INSERT INTO {_quote(_TABLE)} ({columns}) SELECT u.*, {casts} FROM unnest({arrays}) AS u {conflict}",
                [*constants, *(list(column) for column in zip(*rows, strict=True))],
            )
            created.extend(row[0] for row in cursor.fetchall())
        else:
            # One JSON parameter and a fixed statement text: SQLite's (and Python's) prepared statement
            # cache then holds one small program, not one VALUES list of thousands of rows per batch size.
            extracts = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(ROW_COLUMNS)))
            constants_sql = ", ".join(["%s"] * len(fields))
            cursor.execute(
                f"INSERT INTO {_quote(_TABLE)} ({columns}) SELECT {extracts}, {constants_sql} "
                f"FROM json_each(%s) WHERE true {conflict}",  # WHERE: SQLite's upsert needs it after a SELECT
                [*constants, json.dumps(rows, ensure_ascii=False)],
            )
            created.extend(row[0] for row in cursor.fetchall())
    return created


def near_duplicates_link(pairs: list[tuple[int, int]], *, reject_from_id: int = 0) -> list[int]:
    """Point each (member id, kept id) member at its kept prompt unless it points somewhere already.

    Pending members from id `reject_from_id` on (what the current import stored) are rejected as
    duplicates in the same statement; older pending ones stay pending for a person to decide, and a
    decision already made stands. Returns the ids linked now.
    """
    if not pairs:
        return []
    table, link, status, reasons = (_quote(n) for n in (_TABLE, "near_duplicate_of_id", "status", "rejection_reasons"))
    reasons_field = Prompt._meta.get_field("rejection_reasons")
    rejected_reasons = reasons_field.get_db_prep_save([RejectionReason.DUPLICATE.value], connection)
    if _is_postgres():
        source = "unnest(%s::bigint[], %s::bigint[]) AS k(id, kept)"
        source_params = [[member for member, _ in pairs], [kept for _, kept in pairs]]
        reasons_cast = "::jsonb"
        unlinked = f"{table}.{link} IS NULL"
    else:
        source = (
            "(SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS kept FROM json_each(%s)) AS k"
        )
        source_params = [json.dumps(pairs)]
        reasons_cast = ""
        # Unary + keeps SQLite from scanning the near_duplicate_of index for every pair: look up by id.
        unlinked = f"+{table}.{link} IS NULL"
    sql = (
        f"UPDATE {table} SET {link} = k.kept, "
        f"{status} = CASE WHEN {table}.{status} = %s AND {table}.{_quote('id')} >= %s THEN %s "
        f"ELSE {table}.{status} END, "
        f"{reasons} = CASE WHEN {table}.{status} = %s AND {table}.{_quote('id')} >= %s THEN %s{reasons_cast} "
        f"ELSE {table}.{reasons} END "
        f"FROM {source} WHERE {table}.{_quote('id')} = k.id AND {unlinked} "
        f"RETURNING {table}.{_quote('id')}"
    )
    pending, rejected = PromptStatus.PENDING.value, PromptStatus.REJECTED.value
    params = [pending, reject_from_id, rejected, pending, reject_from_id, rejected_reasons]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *source_params])
        return [row[0] for row in cursor.fetchall()]
