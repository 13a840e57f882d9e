"""The claim looks at a bounded head of each level of partly judged pairs, then fresh pairs, then the rest.

Migration 0004's claim took the first eligible open pair in (judgements done desc, id) order. An
annotator's own judged pairs stay open until others judge them too, and sit at the head of that
order: a claim stepped over every one of them. One annotator labeling alone, two when a pair needs
three, or one far faster than the rest, made each claim cost in proportion to all they had judged
(measured: 8 ms of PostgreSQL per claim after 2,000 own open pairs, 21 ms after 4,400).

Now a claim tries, for each kind (gold or not):
1. the first HEAD_SCAN partly judged pairs in queue order (a bounded walk; most claims stop at the
   first few rows);
2. when none of those fits, the first HEAD_SCAN pairs of each level of judgements done, highest
   first: pairs nobody left can finish (two annotators, three judgements a pair: the pairs both
   judged) may fill the first head, and must not hide the level below from whoever can take it;
3. then pairs nobody has judged yet, by id, from the kind's front (`QueueFront`, moved by the
   lease-table upkeep): judged pairs leave index entries behind until a vacuum, and a walk from
   the start stepped over each (1.2 ms a claim after 80,000 judgements);
4. only when none of these has one, every other partly judged pair (the end of a queue: still
   correct, still never "nothing to judge" while something is).
Partly judged pairs still come first for everyone whose own pairs do not crowd the heads; the one
who runs ahead takes fresh pairs, and the others finish the partly judged ones.
"""

import importlib

from django.db import migrations, models

# 0004 is history and never changes: its blocks (header, recount after the lock, load) are reused here.
_V4 = importlib.import_module("annotation.migrations.0004_queue_functions")

# Enough for the pairs a team holds under lease at once (two per annotator) and a few of one's own.
HEAD_SCAN = 128

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

# A head: an ordered subquery with its own LIMIT; the outer query keeps that order without a sort
# and tests each row as it comes, so a claim walks only as far as its first eligible pair.
_TOP_SOURCE = f"""(
                    SELECT h.id, h.judgements_done FROM annotation_pair h
                    WHERE h.judgements_done < h.judgements_required AND h.is_gold = {{gold}}
                      AND h.judgements_done > 0
                    ORDER BY h.judgements_done DESC, h.id
                    LIMIT {HEAD_SCAN}
                ) head JOIN annotation_pair p ON p.id = head.id"""

_LEVEL_SOURCE = f"""(
                    SELECT h.id FROM annotation_pair h
                    WHERE h.judgements_done = _level AND h.judgements_done < h.judgements_required
                      AND h.is_gold = {{gold}}
                    ORDER BY h.id
                    LIMIT {HEAD_SCAN}
                ) head JOIN annotation_pair p ON p.id = head.id"""

# Fresh pairs from the kind's front on (`QueueFront`, kept by the lease-table upkeep): below it lie the
# index entries judged pairs left behind, which a walk from the start would step over one by one.
FRESH_CONDITION = """
                  AND p.judgements_done = 0
                  AND p.id >= coalesce((SELECT f.fresh_from FROM annotation_queuefront f
                                        WHERE f.is_gold = {gold}), 0)"""

# (source, extra condition, judged check, order) of each region, in the order a claim tries them. A
# pair nobody has judged needs no look at this annotator's judgements (a judgement and the count it
# adds commit together, and the lock's recheck of `judgements_done = 0` sees a submit committed since
# the snapshot): left in, the planner may merge against every judgement they ever made (4 ms at 11,000).
REGIONS = (
    (_TOP_SOURCE, "", JUDGED_CHECK, "head.judgements_done DESC, head.id"),
    (_LEVEL_SOURCE, "", JUDGED_CHECK, "head.id"),
    ("annotation_pair p", FRESH_CONDITION, "", "p.id"),
    ("annotation_pair p", "", JUDGED_CHECK, "p.judgements_done DESC, p.id"),
)


def pick(gold: str, region: int, slot_check: str = _V4.PICK_SLOT_CHECK) -> str:
    source, condition, judged_check, order = REGIONS[region]
    return _PICK.format(
        source=source.format(gold=gold),
        gold=gold,
        region=condition.format(gold=gold),
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


# Sets `_level` to the highest level of judgements done below `{below}` among open pairs of the kind
# (NULL when there is none), and `_region` to where the claim looks next: that level's head, or fresh pairs.
_NEXT_LEVEL = """SELECT max(p.judgements_done) INTO _level FROM annotation_pair p
                WHERE p.judgements_done < p.judgements_required AND p.is_gold = {gold}
                  AND p.judgements_done > 0 AND p.judgements_done < {below}"""


def _next_level(below: str) -> str:
    return f"""IF _gold THEN
                {_NEXT_LEVEL.format(gold="true", below=below)};
            ELSE
                {_NEXT_LEVEL.format(gold="false", below=below)};
            END IF;
            _region := CASE WHEN _level IS NULL THEN 2 ELSE 1 END;"""


def claim_function(slot_check: str = _V4.PICK_SLOT_CHECK) -> str:
    """The claim function's text; tests build one with another `slot_check` to play a stale snapshot.

    Only the pick changes: the loop that tried it per kind now tries it per region too (region 1 once
    per level), and what follows a pick (the recount after the lock, the load) is 0004's text.
    """
    declared = _V4.CLAIM.replace(
        "    _fits boolean;\n", "    _fits boolean;\n    _level integer;\n    _region integer;\n", 1
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
        FOR _attempt IN 1.._max_stale LOOP
            _lease := NULL;
            {_picks(slot_check)}
{declared[after_pick:loop_end]}        END LOOP;
        IF _region = 0 THEN
            {_next_level("32767")}
        ELSIF _region = 1 THEN
            {_next_level("_level")}
        ELSIF _region = 2 THEN
            _region := 3;
        ELSE
            EXIT;
        END IF;
"""
    return declared[:loop_start] + loop + declared[loop_end:]


CLAIM = claim_function()


def create_claim(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CLAIM)


def restore_claim(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_V4.CLAIM)


class Migration(migrations.Migration):
    dependencies = [("annotation", "0007_lease_table_autovacuum")]

    operations = [
        migrations.CreateModel(
            name="QueueFront",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("is_gold", models.BooleanField(unique=True)),
                ("fresh_from", models.BigIntegerField(default=0)),
            ],
        ),
        migrations.RunPython(create_claim, restore_claim),
    ]
