"""The claim walks a bounded head of the partly judged pairs, then fresh pairs from a front it keeps.

Migration 0004's claim took the first eligible open pair in (judgements done desc, id) order from
the start of the queue index. Two costs grew without bound there:
- An annotator's own judged pairs stay open until others judge them too and sit at the head of that
  order: a claim stepped over every one of them. One annotator labeling alone, two when a pair needs
  three, or one far faster than the rest paid for all they had judged (PostgreSQL 8 ms a claim after
  2,000 own open pairs, 21 ms after 4,400).
- Every pair taken leaves a dead index entry at the start of the fresh pairs until a vacuum (nothing
  is inserted there, so the index never cleans those pages itself): a claim for a fresh pair stepped
  over all of them (1.2 ms after 80,000 judgements; autovacuum waits for 20% of the table by default).

Now a claim tries, for each kind (gold or not):
1. the first HEAD_SCAN partly judged pairs in queue order (a bounded walk; in a busy queue those are
   mostly pairs in flight, leased to others);
2. then pairs nobody has judged yet, by id, from the kind's fresh front (`QueueFront`: the lowest id
   of an unjudged open pair, set again by the first claim that finds it older than FRONT_SECONDS,
   one claim at a time under an advisory lock, so no beat or cron is needed);
3. only when neither has one, every open pair from the start (the end of a queue: still never
   "nothing to judge" while something is).
Partly judged pairs still come first for everyone whose own pairs do not crowd the head; the one
who runs ahead takes fresh pairs, and the others finish the partly judged ones. When fewer people
label than a pair needs judgements, the pairs all of them judged can never finish and end up filling
the head: then everyone takes fresh pairs (lower PAIR_JUDGEMENTS_REQUIRED for such a team).
"""

import importlib

from django.db import migrations, models

# 0004 is history and never changes: its blocks (header, recount after the lock, load) are reused here.
_V4 = importlib.import_module("annotation.migrations.0004_queue_functions")

# Enough for the pairs a team holds under lease at once (two per annotator) and a few of one's own.
HEAD_SCAN = 128
FRONT_SECONDS = 5

_PICK = """
            WITH candidate AS (
                SELECT p.id FROM {source}
                WHERE p.judgements_done < p.judgements_required
                  AND p.is_gold = {gold}{region}
                  AND p.id <> ALL(_stepped){slot_check}{judged_check}
                  AND NOT EXISTS (SELECT 1 FROM annotation_pairskip k
                                  WHERE k.pair_id = p.id AND k.annotator_id = _user)
                  AND NOT EXISTS (SELECT 1 FROM annotation_pairlease m
                                  WHERE m.pair_id = p.id AND m.annotator_id = _user)
                ORDER BY {order}
                LIMIT 1
                FOR UPDATE OF p SKIP LOCKED
            )
            INSERT INTO annotation_pairlease (pair_id, annotator_id, left_side, expires_at, created_at)
            SELECT id, _user, _side, _now + make_interval(secs => _lease_seconds), _now FROM candidate
            RETURNING id, pair_id INTO _lease, _pair"""

JUDGED_CHECK = """
                  AND NOT EXISTS (SELECT 1 FROM annotation_judgement j
                                  WHERE j.pair_id = p.id AND j.annotator_id = _user)"""

# The head: an ordered subquery with its own LIMIT; the outer query keeps that order without a sort
# and tests each row as it comes, so a claim walks only as far as its first eligible pair.
_HEAD_SOURCE = f"""(
                    SELECT h.id, h.judgements_done FROM annotation_pair h
                    WHERE h.judgements_done < h.judgements_required AND h.is_gold = {{gold}}
                      AND h.judgements_done > 0
                    ORDER BY h.judgements_done DESC, h.id
                    LIMIT {HEAD_SCAN}
                ) head JOIN annotation_pair p ON p.id = head.id"""

FRESH_CONDITION = """
                  AND p.judgements_done = 0 AND p.id >= _fresh_from"""

# (source, extra condition, judged check, order) of each region, in the order a claim tries them. A
# pair nobody has judged needs no look at this annotator's judgements (a judgement and the count it
# adds commit together, and the lock's recheck of `judgements_done = 0` sees a submit committed since
# the snapshot): left in, the planner may merge against every judgement they ever made (4 ms at 11,000).
REGIONS = (
    (_HEAD_SOURCE, "", JUDGED_CHECK, "head.judgements_done DESC, head.id"),
    ("annotation_pair p", FRESH_CONDITION, "", "p.id"),
    ("annotation_pair p", "", JUDGED_CHECK, "p.judgements_done DESC, p.id"),
)


def pick(gold: str, region: int, slot_check: str = _V4.PICK_SLOT_CHECK) -> str:
    source, condition, judged_check, order = REGIONS[region]
    return _PICK.format(
        source=source.format(gold=gold),
        gold=gold,
        region=condition,
        order=order,
        slot_check=slot_check,
        judged_check=judged_check,
    )


def _picks(slot_check: str) -> str:
    branches = [
        f"{'IF' if index == 0 else 'ELSIF'} _gold = {gold} AND _region = {region} THEN{pick(gold, region, slot_check)};"
        for index, (gold, region) in enumerate((g, r) for g in ("true", "false") for r in range(len(REGIONS)))
    ]
    return "\n            ".join(branches) + "\n            END IF;"


# Moves one kind's fresh front to its lowest unjudged open pair (kept where it is while there is none).
FRONT = """
CREATE OR REPLACE FUNCTION mhp_fresh_front_move(_gold boolean, _now timestamptz) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    _from bigint;
BEGIN
    -- The queue index's own predicate and order, so that the walk starts where claims would.
    IF _gold THEN
        SELECT p.id INTO _from FROM annotation_pair p
        WHERE p.judgements_done < p.judgements_required AND p.is_gold AND p.judgements_done = 0
        ORDER BY p.judgements_done DESC, p.id LIMIT 1;
    ELSE
        SELECT p.id INTO _from FROM annotation_pair p
        WHERE p.judgements_done < p.judgements_required AND NOT p.is_gold AND p.judgements_done = 0
        ORDER BY p.judgements_done DESC, p.id LIMIT 1;
    END IF;
    INSERT INTO annotation_queuefront (is_gold, fresh_from, moved_at) VALUES (_gold, coalesce(_from, 0), _now)
    ON CONFLICT (is_gold) DO UPDATE
    SET fresh_from = coalesce(_from, annotation_queuefront.fresh_from), moved_at = EXCLUDED.moved_at
    RETURNING fresh_from INTO _from;
    RETURN _from;
END;
$$
"""

# One advisory lock key per kind, so that one claim at a time moves the front.
_FRONT_LOCK = 8_460_001


def claim_function(slot_check: str = _V4.PICK_SLOT_CHECK) -> str:
    """The claim function's text; tests build one with another `slot_check` to play a stale snapshot.

    Only the pick changes: the loop that tried it per kind now tries it per region too, and what
    follows a pick (the recount after the lock, the load) is 0004's text.
    """
    declared = _V4.CLAIM.replace(
        "    _fits boolean;\n",
        "    _fits boolean;\n    _fresh_from bigint;\n    _front_current boolean;\n    _region integer;\n",
        1,
    )
    loop_start = declared.index("    -- Gold pairs come at the caller's rate")
    after_pick = declared.index("            EXIT WHEN _lease IS NULL;")
    # 0004's two closing END LOOPs then close the region loop and the kind loop.
    loop_end = declared.index("        END LOOP;\n    END LOOP;\nEND;\n$$")
    loop = f"""    -- Gold pairs come at the caller's rate; either kind falls back to the other when it runs out.
    FOREACH _gold IN ARRAY ARRAY[_gold_first, NOT _gold_first] LOOP
        _stepped := '{{}}';
        _region := 0;
        LOOP
        IF _region = 1 THEN
            -- While one claim moves an old front, the others start from it as it is.
            SELECT f.fresh_from, f.moved_at > _now - make_interval(secs => {FRONT_SECONDS})
            INTO _fresh_from, _front_current FROM annotation_queuefront f WHERE f.is_gold = _gold;
            IF NOT coalesce(_front_current, false) AND pg_try_advisory_xact_lock({_FRONT_LOCK}, _gold::integer) THEN
                _fresh_from := mhp_fresh_front_move(_gold, _now);
            END IF;
            _fresh_from := coalesce(_fresh_from, 0);
        END IF;
        FOR _attempt IN 1.._max_stale LOOP
            _lease := NULL;
            {_picks(slot_check)}
{declared[after_pick:loop_end]}        END LOOP;
        IF _region < {len(REGIONS) - 1} THEN
            _region := _region + 1;
        ELSE
            EXIT;
        END IF;
"""
    return declared[:loop_start] + loop + declared[loop_end:]


CLAIM = claim_function()


def create_claim(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FRONT)
        schema_editor.execute(CLAIM)


def restore_claim(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_V4.CLAIM)
        schema_editor.execute("DROP FUNCTION IF EXISTS mhp_fresh_front_move(boolean, timestamptz)")


class Migration(migrations.Migration):
    dependencies = [("annotation", "0007_lease_table_autovacuum")]

    operations = [
        migrations.CreateModel(
            name="QueueFront",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("is_gold", models.BooleanField(unique=True)),
                ("fresh_from", models.BigIntegerField(help_text="No open pair below this id is unjudged.")),
                ("moved_at", models.DateTimeField()),
            ],
        ),
        migrations.RunPython(create_claim, restore_claim),
    ]
