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
