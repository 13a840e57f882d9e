CREATE OR REPLACE FUNCTION mhp_dataset_judgement_frozen_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    _versions bigint[];
BEGIN
    -- The raw judgements of a frozen version are part of it: none is added, changed, moved or deleted.
    IF TG_OP = 'INSERT' THEN
        _versions := ARRAY[NEW.version_id];
    ELSIF TG_OP = 'DELETE' THEN
        _versions := ARRAY[OLD.version_id];
    ELSE
        _versions := ARRAY[OLD.version_id, NEW.version_id];
    END IF;
    IF EXISTS (SELECT 1 FROM datasets_datasetversion v WHERE v.id = ANY(_versions) AND v.status = 'frozen') THEN
        RAISE EXCEPTION 'the raw judgements of a frozen dataset version never change'
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$
