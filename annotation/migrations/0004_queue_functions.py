"""The labeling hot path as PostgreSQL functions: claim and submit (one round trip each), a permission test.

Claim and submit follow the same rules as the portable ORM path in `annotation.services.queue` and
are called from `annotation.services.queue.postgres`; `mhp_user_has_perm` from `annotation.auth_backend`.
Each statement inside a PL/pgSQL function takes a fresh snapshot (read committed), so a count made
after a row lock was granted sees everything committed before it: that is what keeps "judgements
done + live leases <= judgements required" exact under concurrency. PL/pgSQL also keeps each
statement's plan for the connection's life, so nothing is parsed or planned again on the hot path.
Other databases get nothing here and use the ORM path.
"""

from django.db import migrations

# The lease with its pair, prompt and images (what the form shows) and the pair's live lease count.
_LOAD = """
    SELECT 'leased'::text, l.id, l.pair_id, l.annotator_id, l.left_side, l.expires_at, l.created_at,
           p.id, p.prompt_id, p.image_first_id, p.image_second_id, p.kind, p.judgements_required,
           p.judgements_done, p.is_gold, pr.text,
           f.id, f.prompt_id, f.file, f.thumbnail, f.width, f.height,
           s.id, s.prompt_id, s.file, s.thumbnail, s.width, s.height
    FROM annotation_pairlease l
    JOIN annotation_pair p ON p.id = l.pair_id
    JOIN annotation_prompt pr ON pr.id = p.prompt_id
    JOIN annotation_image f ON f.id = p.image_first_id
    JOIN annotation_image s ON s.id = p.image_second_id
    WHERE l.id = {lease}"""

# `is_gold` is a literal, not a parameter: each kind keeps its own plan (the planner takes the is_gold
# index for the rare gold pairs and the open-queue index for the others). The free-slot test here uses
# this statement's snapshot, which predates the row lock; `_fits` re-counts after it.
_PICK = """
            WITH candidate AS (
                SELECT p.id FROM annotation_pair p
                WHERE p.judgements_done < p.judgements_required
                  AND p.is_gold = {gold}
                  AND p.id <> ALL(_stepped){slot_check}
                  AND NOT EXISTS (SELECT 1 FROM annotation_judgement j
                                  WHERE j.pair_id = p.id AND j.annotator_id = _user)
                  AND NOT EXISTS (SELECT 1 FROM annotation_pairskip k
                                  WHERE k.pair_id = p.id AND k.annotator_id = _user)
                  AND NOT EXISTS (SELECT 1 FROM annotation_pairlease m
                                  WHERE m.pair_id = p.id AND m.annotator_id = _user)
                ORDER BY p.judgements_done DESC, p.id
                LIMIT 1
                FOR UPDATE OF p SKIP LOCKED
            )
            INSERT INTO annotation_pairlease (pair_id, annotator_id, left_side, expires_at, created_at)
            SELECT id, _user, _side, _now + make_interval(secs => _lease_seconds), _now FROM candidate
            RETURNING id, pair_id INTO _lease, _pair"""

PICK_SLOT_CHECK = """
                  AND p.judgements_done
                      + (SELECT count(*) FROM annotation_pairlease a
                         WHERE a.pair_id = p.id AND a.expires_at > _now) < p.judgements_required"""

CLAIM = f"""
CREATE OR REPLACE FUNCTION mhp_pair_claim(
    _user integer, _exclude bigint[], _now timestamptz, _lease_seconds integer, _max_held integer,
    _gold_first boolean, _side varchar, _max_stale integer, _async_commit boolean
) RETURNS TABLE (
    status text, l_id bigint, l_pair_id bigint, l_annotator_id integer, l_left_side varchar,
    l_expires_at timestamptz, l_created_at timestamptz,
    p_id bigint, p_prompt_id bigint, p_image_first_id bigint, p_image_second_id bigint, p_kind varchar,
    p_judgements_required smallint, p_judgements_done smallint, p_is_gold boolean, pr_text text,
    f_id bigint, f_prompt_id bigint, f_file varchar, f_thumbnail varchar, f_width integer, f_height integer,
    s_id bigint, s_prompt_id bigint, s_file varchar, s_thumbnail varchar, s_width integer, s_height integer
) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    _enabled boolean;
    _held record;
    _held_count integer := 0;
    _gold boolean;
    _stepped bigint[];
    _lease bigint;
    _pair bigint;
    _fits boolean;
BEGIN
    IF _async_commit THEN
        -- A lost lease after a database crash only returns the pair to the queue: no need to wait
        -- for the disk on every claim. Judgements always commit durably.
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    -- The profile row is the annotator's mutex: their claims (two tabs, a retry) run one at a time.
    SELECT labeling_enabled INTO _enabled FROM annotation_annotatorprofile WHERE user_id = _user FOR UPDATE;
    IF NOT FOUND THEN
        status := 'no-profile';
        RETURN NEXT;
        RETURN;
    END IF;
    IF NOT _enabled THEN
        status := 'disabled';
        RETURN NEXT;
        RETURN;
    END IF;
    -- Their own expired leases would block a new lease on the same pair (unique per pair+annotator).
    DELETE FROM annotation_pairlease WHERE annotator_id = _user AND expires_at <= _now;
    -- A pair they hold and do not exclude (the one on screen) is handed back: a reload shows it again.
    FOR _held IN
        SELECT id, pair_id FROM annotation_pairlease
        WHERE annotator_id = _user AND expires_at > _now ORDER BY created_at, id
    LOOP
        IF NOT (_held.pair_id = ANY(_exclude)) THEN
            RETURN QUERY {_LOAD.format(lease="_held.id")};
            RETURN;
        END IF;
        _held_count := _held_count + 1;
    END LOOP;
    IF _held_count >= _max_held THEN
        RETURN;
    END IF;
    -- Gold pairs come at the caller's rate; either kind falls back to the other when it runs out.
    FOREACH _gold IN ARRAY ARRAY[_gold_first, NOT _gold_first] LOOP
        _stepped := '{{}}';
        FOR _attempt IN 1.._max_stale LOOP
            _lease := NULL;
            IF _gold THEN
                {_PICK.format(gold="true", slot_check=PICK_SLOT_CHECK)};
            ELSE
                {_PICK.format(gold="false", slot_check=PICK_SLOT_CHECK)};
            END IF;
            EXIT WHEN _lease IS NULL;
            -- A fresh snapshot, taken after the row lock: a lease committed by whoever held that lock
            -- a moment ago is counted now. A pair that turns out full loses the lease just made and
            -- is stepped over (its lock lasts until commit, which is harmless).
            SELECT p.judgements_done
                   + (SELECT count(*) FROM annotation_pairlease a
                      WHERE a.pair_id = p.id AND a.expires_at > _now) <= p.judgements_required
            INTO _fits FROM annotation_pair p WHERE p.id = _pair;
            IF _fits THEN
                RETURN QUERY {_LOAD.format(lease="_lease")};
                RETURN;
            END IF;
            DELETE FROM annotation_pairlease WHERE id = _lease;
            _stepped := _stepped || _pair;
        END LOOP;
    END LOOP;
END;
$$
"""

SUBMIT = """
CREATE OR REPLACE FUNCTION mhp_judgement_submit(
    _user integer, _pair bigint, _token uuid, _if_first varchar[], _if_second varchar[],
    _duration_ms integer, _now timestamptz
) RETURNS TABLE (status text, judgement_id bigint, left_side varchar, duration_ms integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    _done smallint;
    _required smallint;
    _lease record;
    _answers varchar[];
    _others bigint;
    _id bigint;
BEGIN
    -- Submissions of one pair run one at a time; every statement below sees all that committed first,
    -- including a concurrent retry of this very submission.
    SELECT judgements_done, judgements_required INTO _done, _required
    FROM annotation_pair WHERE id = _pair FOR UPDATE;
    IF EXISTS (SELECT 1 FROM annotation_judgement j
               WHERE j.client_token = _token OR (j.pair_id = _pair AND j.annotator_id = _user)) THEN
        status := 'existing';
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT id, left_side, expires_at, created_at INTO _lease
    FROM annotation_pairlease WHERE pair_id = _pair AND annotator_id = _user;
    IF NOT FOUND THEN
        status := 'no-lease';
        RETURN NEXT;
        RETURN;
    END IF;
    IF _done >= _required THEN
        status := 'full';
        RETURN NEXT;
        RETURN;
    END IF;
    IF _lease.expires_at <= _now THEN
        -- A late submission is still welcome if nobody was handed the slot the expired lease freed.
        SELECT count(*) INTO _others FROM annotation_pairlease
        WHERE pair_id = _pair AND expires_at > _now AND id <> _lease.id;
        IF _done + _others >= _required THEN
            status := 'expired-full';
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;
    -- A plain form post has no client clock: the lease's age is the best measure there is.
    _duration_ms := greatest(0, coalesce(_duration_ms,
        floor(extract(epoch FROM _now - _lease.created_at) * 1000)::integer));
    _answers := CASE WHEN _lease.left_side = 'first' THEN _if_first ELSE _if_second END;
    INSERT INTO annotation_judgement (pair_id, annotator_id, aesthetics, detail, alignment, overall,
                                      left_side, duration_ms, client_token, created_at)
    VALUES (_pair, _user, _answers[1], _answers[2], _answers[3], _answers[4],
            _lease.left_side, _duration_ms, _token, _now)
    ON CONFLICT DO NOTHING
    RETURNING id INTO _id;
    IF _id IS NULL THEN
        -- The token was taken meanwhile by a submission of another pair.
        status := 'existing';
        RETURN NEXT;
        RETURN;
    END IF;
    UPDATE annotation_pair SET judgements_done = judgements_done + 1 WHERE id = _pair;
    DELETE FROM annotation_pairlease WHERE id = _lease.id;
    status := 'stored';
    judgement_id := _id;
    left_side := _lease.left_side;
    duration_ms := _duration_ms;
    RETURN NEXT;
END;
$$
"""

# The labeling API checks `annotation.label_pairs` on every call, with the user; the same test as an
# ad hoc query costs more to plan (about a millisecond) than to run, and a function keeps its plan.
HAS_PERM = """
CREATE OR REPLACE FUNCTION mhp_user_has_perm(_user integer, _app_label varchar, _codename varchar)
RETURNS boolean LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN EXISTS (
        SELECT 1 FROM auth_user_user_permissions x
        JOIN auth_permission p ON p.id = x.permission_id
        JOIN django_content_type ct ON ct.id = p.content_type_id
        WHERE x.user_id = _user AND p.codename = _codename AND ct.app_label = _app_label
    ) OR EXISTS (
        SELECT 1 FROM auth_user_groups g
        JOIN auth_group_permissions x ON x.group_id = g.group_id
        JOIN auth_permission p ON p.id = x.permission_id
        JOIN django_content_type ct ON ct.id = p.content_type_id
        WHERE g.user_id = _user AND p.codename = _codename AND ct.app_label = _app_label
    );
END;
$$
"""

DROP = """
DROP FUNCTION IF EXISTS mhp_pair_claim(integer, bigint[], timestamptz, integer, integer, boolean, varchar,
                                       integer, boolean);
DROP FUNCTION IF EXISTS mhp_judgement_submit(integer, bigint, uuid, varchar[], varchar[], integer, timestamptz);
DROP FUNCTION IF EXISTS mhp_user_has_perm(integer, varchar, varchar);
"""


def create_functions(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CLAIM)
        schema_editor.execute(SUBMIT)
        schema_editor.execute(HAS_PERM)


def drop_functions(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("annotation", "0003_roles")]

    operations = [migrations.RunPython(create_functions, drop_functions)]
