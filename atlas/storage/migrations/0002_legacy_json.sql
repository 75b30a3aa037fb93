-- Bring JSON written by older Atlas versions into the shapes the readers and
-- the indexes of 0003 expect. Nothing is deleted: a value is only rewritten
-- when its new form carries the same information.

-- Some writers double-encoded JSON, so a column held a JSON *string* whose
-- text is an object or array. Decode those; leave every other value alone
-- (including strings that are not JSON, which stay strings).
CREATE OR REPLACE FUNCTION atlas_decode_json_text(value JSONB) RETURNS JSONB
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    decoded JSONB;
BEGIN
    IF value IS NULL OR jsonb_typeof(value) <> 'string' THEN
        RETURN value;
    END IF;
    BEGIN
        decoded := (value #>> '{}')::jsonb;
    EXCEPTION WHEN others THEN
        RETURN value;
    END;
    IF jsonb_typeof(decoded) IN ('object', 'array') THEN
        RETURN decoded;
    END IF;
    RETURN value;
END
$$;

UPDATE sessions SET
    metadata = atlas_decode_json_text(metadata),
    reward = atlas_decode_json_text(reward),
    reward_stats = atlas_decode_json_text(reward_stats),
    reward_audit = atlas_decode_json_text(reward_audit)
WHERE jsonb_typeof(metadata) = 'string'
   OR jsonb_typeof(reward) = 'string'
   OR jsonb_typeof(reward_stats) = 'string'
   OR jsonb_typeof(reward_audit) = 'string';

UPDATE plans SET plan = atlas_decode_json_text(plan) WHERE jsonb_typeof(plan) = 'string';

UPDATE step_results SET
    evaluation = atlas_decode_json_text(evaluation),
    metadata = atlas_decode_json_text(metadata)
WHERE jsonb_typeof(evaluation) = 'string' OR jsonb_typeof(metadata) = 'string';

UPDATE step_attempts SET evaluation = atlas_decode_json_text(evaluation)
WHERE jsonb_typeof(evaluation) = 'string';

-- The reward index casts reward_stats->>'score' to float, which fails for a
-- score such as "n/a" or one beyond float range (1e400). Keep such a value
-- under score_raw instead.
UPDATE sessions
SET reward_stats = (reward_stats - 'score') || jsonb_build_object('score_raw', reward_stats -> 'score')
WHERE jsonb_typeof(reward_stats) = 'object'
  AND reward_stats ? 'score'
  AND jsonb_typeof(reward_stats -> 'score') <> 'null'
  AND CASE
          WHEN jsonb_typeof(reward_stats -> 'score') = 'number'
            OR (reward_stats ->> 'score') ~* '^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)(e[-+]?[0-9]+)?\s*$'
          THEN abs((reward_stats ->> 'score')::numeric) > 1e300
          ELSE true
      END;

-- Releases before reward_stats existed kept the score only in reward; copy it
-- across so reward filters (and their index) see those sessions too.
UPDATE sessions
SET reward_stats = jsonb_build_object('score', reward -> 'score', 'source', 'reward')
WHERE reward_stats IS NULL
  AND jsonb_typeof(reward) = 'object'
  AND jsonb_typeof(reward -> 'score') = 'number';

-- Older tables allowed a NULL created_at, which keyset paging on
-- (created_at, id) cannot place. Use the completion time, else the first
-- event, else the epoch, and say so in the metadata.
UPDATE sessions
SET created_at = COALESCE(
        completed_at,
        (SELECT min(e.created_at) FROM trajectory_events e WHERE e.session_id = sessions.id),
        'epoch'::timestamptz
    ),
    metadata = CASE WHEN metadata IS NULL OR jsonb_typeof(metadata) = 'object'
                    THEN COALESCE(metadata, '{}'::jsonb) || '{"created_at_backfilled": true}'::jsonb
                    ELSE metadata END
WHERE created_at IS NULL;
ALTER TABLE sessions ALTER COLUMN created_at SET DEFAULT NOW();
ALTER TABLE sessions ALTER COLUMN created_at SET NOT NULL;
