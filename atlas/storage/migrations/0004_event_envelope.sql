-- Keep old data queryable for every writer, not only at upgrade time:
--   * atlas_event_envelope lifts a nested trajectory event (atlas-sdk stores
--     IntermediateStep.model_dump(): event_type, name and the actor one level
--     down, under "payload") into the flat envelope, losing nothing. The rows
--     already stored are rewritten in batches by the Python step that follows
--     this file (atlas/storage/normalise.py); a trigger lifts the rows that
--     older writers insert afterwards.
--   * atlas_reward_stats_from_reward is the reward_stats backfill of 0002 as
--     one function; a trigger applies it whenever a writer sets a reward and
--     leaves reward_stats NULL, so min_reward finds those sessions too, and
--     keeps a score the reward index cannot cast under score_raw (0002's rule)
--     rather than let the writer's statement fail.
--
-- This file may run more than once (an interrupted upgrade re-runs it before
-- resuming the batches), so every statement is idempotent.

-- Epoch seconds as Python's datetime.fromtimestamp(x, timezone.utc).isoformat()
-- writes them (atlas.storage.events._iso): split into whole seconds and a
-- fraction exactly as modf does, microseconds rounded half to even (float8
-- round() is rint), years 1..9999. Anything else comes back unchanged. Only
-- timestamp WITHOUT time zone arithmetic is used, so the server's TimeZone
-- setting cannot change the text. IMMUTABLE although to_char is STABLE: only
-- its locale-dependent patterns (TM...) read a setting, and none is used here.
CREATE OR REPLACE FUNCTION atlas_epoch_iso(value JSONB) RETURNS JSONB
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    exact NUMERIC;
    seconds DOUBLE PRECISION;
    whole DOUBLE PRECISION;
    micros DOUBLE PRECISION;
BEGIN
    IF value IS NULL OR jsonb_typeof(value) <> 'number' THEN
        RETURN value;
    END IF;
    exact := value::numeric;
    -- Far outside the range: never convert (numeric -> float8 could overflow).
    IF exact <= -62135596802 OR exact >= 253402300801 THEN
        RETURN value;
    END IF;
    -- json.loads reads a subnormal-or-smaller number as (near) zero, which
    -- rounds to the epoch; float8 input would reject it as an underflow.
    seconds := CASE WHEN abs(exact) < 1e-300 THEN 0 ELSE exact::double precision END;
    whole := trunc(seconds);
    micros := round((seconds - whole) * 1e6);
    IF micros >= 1e6 THEN
        micros := micros - 1e6;
        whole := whole + 1;
    ELSIF micros < 0 THEN
        micros := micros + 1e6;
        whole := whole - 1;
    END IF;
    IF whole < -62135596800 OR whole > 253402300799 THEN
        RETURN value;
    END IF;
    RETURN to_jsonb(
        to_char(timestamp '1970-01-01' + make_interval(secs => whole), 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN micros = 0 THEN '' ELSE '.' || lpad(micros::bigint::text, 6, '0') END
        || '+00:00'
    );
END
$$;

-- The nested shape (atlas.storage.events.is_nested_event): no event_type at
-- the top, an object payload that has one, and no lifted_keys marker yet.
CREATE OR REPLACE FUNCTION atlas_is_nested_event(event JSONB) RETURNS BOOLEAN
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT COALESCE(
        jsonb_typeof(event) = 'object'
        AND NOT event ? 'event_type'
        AND NOT event ? 'lifted_keys'
        AND jsonb_typeof(event -> 'payload') = 'object'
        AND (event -> 'payload') ? 'event_type',
        false
    )
$$;

-- The lossless lift (atlas.storage.events.to_envelope for nested events):
-- every stored key stays as it is; the envelope keys the event lacks are
-- added, and lifted_keys lists them in envelope order so that
-- event - lifted_keys - 'lifted_keys' is exactly the stored event.
CREATE OR REPLACE FUNCTION atlas_event_envelope(event JSONB) RETURNS JSONB
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    inner_event JSONB;
    meta JSONB;
    stamp JSONB;
    lifted JSONB;
    added TEXT[] := '{}';
    key TEXT;
BEGIN
    IF NOT atlas_is_nested_event(event) THEN
        RETURN event;
    END IF;
    inner_event := event -> 'payload';
    meta := CASE WHEN jsonb_typeof(inner_event -> 'metadata') = 'object'
                 THEN inner_event -> 'metadata' ELSE '{}'::jsonb END;
    stamp := inner_event -> 'event_timestamp';
    IF stamp IS NULL OR stamp = 'null'::jsonb THEN
        stamp := inner_event -> 'timestamp';
    END IF;
    -- jsonb_build_object turns a missing value (SQL NULL) into JSON null.
    lifted := jsonb_build_object(
        'event_type', inner_event -> 'event_type',
        'actor', meta -> 'actor',
        'name', inner_event -> 'name',
        'timestamp', atlas_epoch_iso(stamp),
        'step_id', meta -> 'step_id'
    );
    FOREACH key IN ARRAY ARRAY['event_type', 'actor', 'name', 'timestamp', 'step_id'] LOOP
        IF event ? key THEN
            lifted := lifted - key;
        ELSE
            added := added || key;
        END IF;
    END LOOP;
    RETURN event || lifted || jsonb_build_object('lifted_keys', to_jsonb(added));
END
$$;

CREATE OR REPLACE FUNCTION atlas_lift_nested_event() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.event := atlas_event_envelope(NEW.event);
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS trajectory_events_lift_nested ON trajectory_events;
CREATE TRIGGER trajectory_events_lift_nested
    BEFORE INSERT OR UPDATE OF event ON trajectory_events
    FOR EACH ROW WHEN (atlas_is_nested_event(NEW.event))
    EXECUTE FUNCTION atlas_lift_nested_event();

-- A reward_stats score that the reward index cannot cast to float ("high",
-- false, 1e400) would make the writer's whole statement fail and lose the
-- session. Such a score is kept under score_raw instead: the rule 0002 applied
-- to stored rows (0002 is applied history and keeps its own copy; this is the
-- one live definition).
CREATE OR REPLACE FUNCTION atlas_reward_stats_keep_raw_score(stats JSONB) RETURNS JSONB
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN jsonb_typeof(stats) IS DISTINCT FROM 'object' OR NOT stats ? 'score'
            OR jsonb_typeof(stats -> 'score') = 'null' THEN stats
        WHEN CASE
                 WHEN jsonb_typeof(stats -> 'score') = 'number'
                   OR (stats ->> 'score') ~* '^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)(e[-+]?[0-9]+)?\s*$'
                 THEN abs((stats ->> 'score')::numeric) > 1e300
                 ELSE true
             END
            THEN (stats - 'score') || jsonb_build_object('score_raw', stats -> 'score')
        ELSE stats
    END
$$;

-- reward_stats from a reward that carries a numeric score, as 0002 backfilled
-- it. A reward stored double-encoded is read through atlas_decode_json_text
-- (0002) first.
CREATE OR REPLACE FUNCTION atlas_reward_stats_from_reward(reward JSONB) RETURNS JSONB
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        -- -> on anything but an object (or on NULL) is NULL: no score.
        WHEN jsonb_typeof(decoded -> 'score') IS DISTINCT FROM 'number' THEN NULL
        ELSE atlas_reward_stats_keep_raw_score(
            jsonb_build_object('score', decoded -> 'score', 'source', 'reward'))
    END
    FROM (SELECT atlas_decode_json_text(reward) AS decoded) AS r
$$;

-- One trigger keeps reward_stats true for every writer: backfilled from
-- reward when a writer sets only reward (atlas-sdk's older releases), and
-- with an uncastable score kept raw.
CREATE OR REPLACE FUNCTION atlas_keep_reward_stats() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.reward_stats IS NULL THEN
        NEW.reward_stats := atlas_reward_stats_from_reward(NEW.reward);
    ELSE
        NEW.reward_stats := atlas_reward_stats_keep_raw_score(NEW.reward_stats);
    END IF;
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS sessions_reward_stats ON sessions;
CREATE TRIGGER sessions_reward_stats
    BEFORE INSERT OR UPDATE OF reward, reward_stats ON sessions
    FOR EACH ROW WHEN (
        (NEW.reward_stats IS NULL AND NEW.reward IS NOT NULL)
        OR (jsonb_typeof(NEW.reward_stats) = 'object' AND NEW.reward_stats ? 'score'))
    EXECUTE FUNCTION atlas_keep_reward_stats();

-- Sessions an older writer added between 0002 and now.
UPDATE sessions SET reward_stats = atlas_reward_stats_from_reward(reward)
WHERE reward_stats IS NULL AND atlas_reward_stats_from_reward(reward) IS NOT NULL;
