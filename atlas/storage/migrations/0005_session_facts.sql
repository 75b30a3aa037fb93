-- Two facts every session list and every insight groups by, kept beside the
-- metadata they come from: sessions.learning_key and sessions.drift_alert.
-- Reading them from metadata means decompressing a kilobytes-large JSONB value
-- per session (an aggregate over 100,000 sessions spends seconds on that alone);
-- these columns make such scans read a few bytes instead.
--
--   * atlas_session_facts() derives both from metadata, exactly as the readers
--     do: learning_key is metadata ->> 'learning_key' when metadata is an
--     object (else NULL); drift_alert is true only for a JSON true.
--   * A trigger sets them on every insert and every change of metadata (or of
--     the columns themselves: they are derived and cannot drift from metadata),
--     so every writer, atlas-sdk's included, keeps them right.
--   * The sessions already stored are filled by the Python step that follows
--     this file (atlas/storage/normalise.py, SESSION_FACTS), in batches of
--     their own transactions: one UPDATE of every session would hold row locks
--     on all of them, and outlast any statement timeout on a large table.
--
-- And an index for the task search of the session list (task_contains), where
-- the server has pg_trgm (PostgreSQL's contrib; the embedded server may not):
-- a trigram GIN index on lower(task). Without it the search is a scan.
--
-- This file may run more than once, so every statement is idempotent.

ALTER TABLE sessions ADD COLUMN IF NOT EXISTS learning_key TEXT;
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS drift_alert BOOLEAN NOT NULL DEFAULT false;

CREATE OR REPLACE FUNCTION atlas_session_facts() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF jsonb_typeof(NEW.metadata) = 'object' THEN
        NEW.learning_key := NEW.metadata ->> 'learning_key';
        NEW.drift_alert := COALESCE(NEW.metadata -> 'drift_alert' = 'true'::jsonb, false);
    ELSE
        NEW.learning_key := NULL;
        NEW.drift_alert := false;
    END IF;
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS sessions_facts ON sessions;
CREATE TRIGGER sessions_facts
    BEFORE INSERT OR UPDATE OF metadata, learning_key, drift_alert ON sessions
    FOR EACH ROW EXECUTE FUNCTION atlas_session_facts();

DO $$
DECLARE
    trgm_schema TEXT;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_trgm')
       AND EXISTS (SELECT FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS pg_trgm;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'pg_trgm could not be created (%): task search stays a scan', SQLERRM;
        END;
    END IF;
    SELECT n.nspname INTO trgm_schema
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'pg_trgm';
    IF trgm_schema IS NOT NULL THEN
        EXECUTE format(
            'CREATE INDEX IF NOT EXISTS sessions_task_trgm_idx ON sessions '
            'USING gin (lower(task) %I.gin_trgm_ops)', trgm_schema);
    END IF;
END
$$;
