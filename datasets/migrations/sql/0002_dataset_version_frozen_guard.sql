CREATE OR REPLACE FUNCTION mhp_dataset_version_frozen_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- A frozen version never changes and is never deleted: its items, exports and the runs trained on
    -- it all refer to what it was when it froze. Class 23 (restrict_violation) reaches Django as an
    -- IntegrityError.
    IF OLD.status = 'frozen' THEN
        RAISE EXCEPTION 'dataset version % is frozen: it never changes', OLD.name
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$
