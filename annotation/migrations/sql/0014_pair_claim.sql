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
) LANGUAGE plpgsql
-- Every pick walks an index in queue order and stops at its first eligible pair. Without statistics (a
-- freshly seeded or imported table before autovacuum's ANALYZE) the planner would rather fetch every
-- open pair, test each one's leases, then sort (155 ms a claim at 20,000 pairs): no plan may sort. JIT
-- never pays for statements this small, and the cost a disabled sort adds would switch it on.
SET enable_sort = off
SET enable_bitmapscan = off
SET jit = off
AS $$
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
    _fresh_rank integer;
    _fresh_from bigint;
    _front_current boolean;
    _region integer;
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
            RETURN QUERY 
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
    WHERE l.id = _held.id;
            RETURN;
        END IF;
        _held_count := _held_count + 1;
    END LOOP;
    IF _held_count >= _max_held THEN
        RETURN;
    END IF;
    -- Gold pairs come at the caller's rate; either kind falls back to the other when it runs out.
    FOREACH _gold IN ARRAY ARRAY[_gold_first, NOT _gold_first] LOOP
        -- The pairs the client shows are never picked, even when its lease on one ran out meanwhile.
        _stepped := _exclude;
        _region := 0;
        LOOP
        IF _region = 1 THEN
            -- While one claim moves an old front, the others start from it as it is.
            SELECT f.fresh_rank, f.fresh_from, f.moved_at > _now - make_interval(secs => 5)
            INTO _fresh_rank, _fresh_from, _front_current FROM annotation_queuefront f WHERE f.is_gold = _gold;
            IF NOT coalesce(_front_current, false) AND pg_try_advisory_xact_lock(8460001, _gold::integer) THEN
                SELECT m._rank, m._from INTO _fresh_rank, _fresh_from FROM mhp_fresh_front_move(_gold, _now) m;
            END IF;
            -- No front yet: from the start of the serving order (ranks are never negative).
            _fresh_rank := coalesce(_fresh_rank, 0);
            _fresh_from := coalesce(_fresh_from, 0);
        END IF;
        FOR _attempt IN 1.._max_stale LOOP
            _lease := NULL;
            IF _gold = true AND _region = 0 THEN
            WITH candidate AS (
                SELECT p.id FROM (
                    SELECT h.id, h.judgements_done FROM annotation_pair h
                    WHERE h.judgements_done < h.judgements_required AND h.is_gold = true
                      AND h.judgements_done > 0
                    ORDER BY h.judgements_done DESC, h.id
                    LIMIT 128
                ) head JOIN annotation_pair p ON p.id = head.id
                WHERE p.judgements_done < p.judgements_required
                  AND p.is_gold = true
                  AND p.id <> ALL(_stepped)
                  AND p.judgements_done
                      + (SELECT count(*) FROM annotation_pairlease a
                         WHERE a.pair_id = p.id AND a.expires_at > _now) < p.judgements_required
                  AND NOT EXISTS (SELECT 1 FROM annotation_judgement j
                                  WHERE j.pair_id = p.id AND j.annotator_id = _user)
                  AND NOT EXISTS (SELECT 1 FROM annotation_pairskip k
                                  WHERE k.pair_id = p.id AND k.annotator_id = _user)
                  AND NOT EXISTS (SELECT 1 FROM annotation_pairlease m
                                  WHERE m.pair_id = p.id AND m.annotator_id = _user)
                ORDER BY head.judgements_done DESC, head.id
                LIMIT 1
                FOR UPDATE OF p SKIP LOCKED
            )
            INSERT INTO annotation_pairlease (pair_id, annotator_id, left_side, expires_at, created_at)
            SELECT id, _user, _side, _now + make_interval(secs => _lease_seconds), _now FROM candidate
            RETURNING id, pair_id INTO _lease, _pair;
            ELSIF _gold = true AND _region = 1 THEN
            WITH candidate AS (
                SELECT p.id FROM annotation_pair p
                WHERE p.judgements_done = 0 AND p.is_gold = true
                  AND (p.queue_rank, p.id) >= (_fresh_rank, _fresh_from)
                  AND p.id <> ALL(_stepped)
                  AND p.judgements_done
                      + (SELECT count(*) FROM annotation_pairlease a
                         WHERE a.pair_id = p.id AND a.expires_at > _now) < p.judgements_required
                  AND NOT EXISTS (SELECT 1 FROM annotation_pairskip k
                                  WHERE k.pair_id = p.id AND k.annotator_id = _user)
                  AND NOT EXISTS (SELECT 1 FROM annotation_pairlease m
                                  WHERE m.pair_id = p.id AND m.annotator_id = _user)
                ORDER BY p.queue_rank, p.id
                LIMIT 1
                FOR UPDATE OF p SKIP LOCKED
            )
            INSERT INTO annotation_pairlease (pair_id, annotator_id, left_side, expires_at, created_at)
            SELECT id, _user, _side, _now + make_interval(secs => _lease_seconds), _now FROM candidate
            RETURNING id, pair_id INTO _lease, _pair;
            ELSIF _gold = true AND _region = 2 THEN
            WITH candidate AS (
                SELECT p.id FROM annotation_pair p
                WHERE p.judgements_done < p.judgements_required
                  AND p.is_gold = true
                  AND p.id <> ALL(_stepped)
                  AND p.judgements_done
                      + (SELECT count(*) FROM annotation_pairlease a
                         WHERE a.pair_id = p.id AND a.expires_at > _now) < p.judgements_required
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
            RETURNING id, pair_id INTO _lease, _pair;
            ELSIF _gold = false AND _region = 0 THEN
            WITH candidate AS (
                SELECT p.id FROM (
                    SELECT h.id, h.judgements_done FROM annotation_pair h
                    WHERE h.judgements_done < h.judgements_required AND h.is_gold = false
                      AND h.judgements_done > 0
                    ORDER BY h.judgements_done DESC, h.id
                    LIMIT 128
                ) head JOIN annotation_pair p ON p.id = head.id
                WHERE p.judgements_done < p.judgements_required
                  AND p.is_gold = false
                  AND p.id <> ALL(_stepped)
                  AND p.judgements_done
                      + (SELECT count(*) FROM annotation_pairlease a
                         WHERE a.pair_id = p.id AND a.expires_at > _now) < p.judgements_required
                  AND NOT EXISTS (SELECT 1 FROM annotation_judgement j
                                  WHERE j.pair_id = p.id AND j.annotator_id = _user)
                  AND NOT EXISTS (SELECT 1 FROM annotation_pairskip k
                                  WHERE k.pair_id = p.id AND k.annotator_id = _user)
                  AND NOT EXISTS (SELECT 1 FROM annotation_pairlease m
                                  WHERE m.pair_id = p.id AND m.annotator_id = _user)
                ORDER BY head.judgements_done DESC, head.id
                LIMIT 1
                FOR UPDATE OF p SKIP LOCKED
            )
            INSERT INTO annotation_pairlease (pair_id, annotator_id, left_side, expires_at, created_at)
            SELECT id, _user, _side, _now + make_interval(secs => _lease_seconds), _now FROM candidate
            RETURNING id, pair_id INTO _lease, _pair;
            ELSIF _gold = false AND _region = 1 THEN
            WITH candidate AS (
                SELECT p.id FROM annotation_pair p
                WHERE p.judgements_done = 0 AND p.is_gold = false
                  AND (p.queue_rank, p.id) >= (_fresh_rank, _fresh_from)
                  AND p.id <> ALL(_stepped)
                  AND p.judgements_done
                      + (SELECT count(*) FROM annotation_pairlease a
                         WHERE a.pair_id = p.id AND a.expires_at > _now) < p.judgements_required
                  AND NOT EXISTS (SELECT 1 FROM annotation_pairskip k
                                  WHERE k.pair_id = p.id AND k.annotator_id = _user)
                  AND NOT EXISTS (SELECT 1 FROM annotation_pairlease m
                                  WHERE m.pair_id = p.id AND m.annotator_id = _user)
                ORDER BY p.queue_rank, p.id
                LIMIT 1
                FOR UPDATE OF p SKIP LOCKED
            )
            INSERT INTO annotation_pairlease (pair_id, annotator_id, left_side, expires_at, created_at)
            SELECT id, _user, _side, _now + make_interval(secs => _lease_seconds), _now FROM candidate
            RETURNING id, pair_id INTO _lease, _pair;
            ELSIF _gold = false AND _region = 2 THEN
            WITH candidate AS (
                SELECT p.id FROM annotation_pair p
                WHERE p.judgements_done < p.judgements_required
                  AND p.is_gold = false
                  AND p.id <> ALL(_stepped)
                  AND p.judgements_done
                      + (SELECT count(*) FROM annotation_pairlease a
                         WHERE a.pair_id = p.id AND a.expires_at > _now) < p.judgements_required
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
            RETURNING id, pair_id INTO _lease, _pair;
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
                RETURN QUERY 
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
    WHERE l.id = _lease;
                RETURN;
            END IF;
            DELETE FROM annotation_pairlease WHERE id = _lease;
            _stepped := _stepped || _pair;
        END LOOP;
        IF _region < 2 THEN
            _region := _region + 1;
        ELSE
            EXIT;
        END IF;
        END LOOP;
    END LOOP;
    -- Nothing leased, yet a pair they could judge exists in a snapshot taken now: another transaction
    -- (a submit, for milliseconds) held its row lock and the walks skipped it. The caller asks again
    -- rather than telling the annotator that the queue is empty.
    IF EXISTS (
        SELECT 1 FROM annotation_pair p
        WHERE p.judgements_done < p.judgements_required
          AND p.id <> ALL(_exclude)
          AND p.judgements_done
              + (SELECT count(*) FROM annotation_pairlease a
                 WHERE a.pair_id = p.id AND a.expires_at > _now) < p.judgements_required
          AND NOT EXISTS (SELECT 1 FROM annotation_judgement j
                          WHERE j.pair_id = p.id AND j.annotator_id = _user)
          AND NOT EXISTS (SELECT 1 FROM annotation_pairskip k
                          WHERE k.pair_id = p.id AND k.annotator_id = _user)
          AND NOT EXISTS (SELECT 1 FROM annotation_pairlease m
                          WHERE m.pair_id = p.id AND m.annotator_id = _user)
    ) THEN
        status := 'busy';
        RETURN NEXT;
    END IF;
END;
$$
