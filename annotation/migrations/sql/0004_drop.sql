DROP FUNCTION IF EXISTS mhp_pair_claim(integer, bigint[], timestamptz, integer, integer, boolean, varchar,
                                       integer, boolean);
DROP FUNCTION IF EXISTS mhp_judgement_submit(integer, bigint, uuid, varchar[], varchar[], integer, timestamptz);
DROP FUNCTION IF EXISTS mhp_user_has_perm(integer, varchar, varchar);
