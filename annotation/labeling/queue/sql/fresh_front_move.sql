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
