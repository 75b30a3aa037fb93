-- Indexes for every filter the read API offers, plus the named indexes of the
-- published schema. Each read path is checked with EXPLAIN in the tests.

CREATE INDEX IF NOT EXISTS sessions_reward_score_idx
    ON sessions (((reward_stats ->> 'score')::float));

CREATE INDEX IF NOT EXISTS sessions_metadata_gin_idx
    ON sessions USING GIN (metadata);

CREATE INDEX IF NOT EXISTS sessions_learning_key_idx
    ON sessions ((metadata ->> 'learning_key'));

-- sessions_created_at_idx doubles as the keyset-paging index: (created_at, id)
-- newest first. Older installations have it on created_at alone; replace it.
DO $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM pg_indexes
        WHERE schemaname = current_schema()
          AND indexname = 'sessions_created_at_idx'
          AND indexdef NOT LIKE '%(created_at DESC, id DESC)%'
    ) THEN
        DROP INDEX sessions_created_at_idx;
    END IF;
END
$$;
CREATE INDEX IF NOT EXISTS sessions_created_at_idx
    ON sessions (created_at DESC, id DESC);

-- Status filters are almost always combined with newest-first paging, so the
-- paging columns follow the status in the same index.
CREATE INDEX IF NOT EXISTS sessions_status_idx
    ON sessions (status, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS sessions_review_status_idx
    ON sessions (review_status, created_at DESC, id DESC);

CREATE INDEX IF NOT EXISTS trajectory_events_session_idx
    ON trajectory_events (session_id, id);

CREATE INDEX IF NOT EXISTS discovery_runs_project_idx
    ON discovery_runs (project_root, created_at DESC);
