-- When each session last changed, as the id of the transaction that changed it:
-- the watermark of incremental exports (arc-atlas export --state FILE).
--
-- A session becomes exportable when it finishes or is approved, long after it
-- was created, so created_at cannot tell an export what is new. A timestamp or
-- a sequence written by the trigger cannot either: a transaction that took its
-- value early and commits late would land behind a watermark already passed.
-- A transaction id can: an export records the snapshot it read in, and the next
-- run takes exactly the rows whose change that snapshot could not see
-- (changed_xid >= the snapshot's xmin, and not visible in it), whenever they
-- committed. See docs/incremental.md.
--
-- Sessions stored before this migration keep NULL: every export from now on
-- reads in a snapshot that sees them, so none of them is "new" to a later run.
--
-- This file may run more than once, so every statement is idempotent.

ALTER TABLE sessions ADD COLUMN IF NOT EXISTS changed_xid xid8;

CREATE OR REPLACE FUNCTION atlas_session_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.changed_xid := pg_current_xact_id();
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS sessions_changed ON sessions;
CREATE TRIGGER sessions_changed
    BEFORE INSERT OR UPDATE ON sessions
    FOR EACH ROW EXECUTE FUNCTION atlas_session_changed();

CREATE INDEX IF NOT EXISTS sessions_changed_xid_idx ON sessions (changed_xid);
