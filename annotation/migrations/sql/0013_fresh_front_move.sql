CREATE OR REPLACE FUNCTION mhp_fresh_front_move(
    _gold boolean, _now timestamptz, OUT _rank integer, OUT _from bigint
) LANGUAGE plpgsql AS $$
BEGIN
    -- The fresh queue index's own predicate and order, so that the walk starts where claims would.
    SELECT p.queue_rank, p.id INTO _rank, _from FROM annotation_pair p
    WHERE p.judgements_done = 0 AND p.is_gold = _gold
    ORDER BY p.queue_rank, p.id LIMIT 1;
    -- With no fresh pair left the front stays where it was.
    INSERT INTO annotation_queuefront AS f (is_gold, fresh_rank, fresh_from, moved_at)
    VALUES (_gold, coalesce(_rank, 0), coalesce(_from, 0), _now)
    ON CONFLICT (is_gold) DO UPDATE
    SET fresh_rank = CASE WHEN _from IS NULL THEN f.fresh_rank ELSE EXCLUDED.fresh_rank END,
        fresh_from = coalesce(_from, f.fresh_from), moved_at = EXCLUDED.moved_at
    RETURNING f.fresh_rank, f.fresh_from INTO _rank, _from;
END;
$$
