-- The database layout atlas-sdk 0.1.16 creates on connect, as seed 002 documents it.
--
-- The 0.1.16 wheel and sdist on PyPI leave out atlas/runtime/storage/schema.sql,
-- so its Database.connect() (and with it its exporter and readers) fails with
-- FileNotFoundError. The interop tier installs this file in that place in the
-- test virtualenv, so the sdk creates its own layout exactly as an installation
-- from source does: plans.plan NOT NULL, step_results.session_id nullable,
-- sessions_created_at_idx on created_at alone, a partial reward-score index,
-- and no migrations table.

CREATE TABLE IF NOT EXISTS sessions (
    id SERIAL PRIMARY KEY,
    task TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'running',
    metadata JSONB,
    final_answer TEXT,
    reward JSONB,
    reward_stats JSONB,
    reward_audit JSONB,
    student_learning TEXT,
    teacher_learning TEXT,
    review_status TEXT NOT NULL DEFAULT 'pending',
    review_notes TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    completed_at TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS sessions_learning_key_idx ON sessions ((metadata ->> 'learning_key'));
CREATE INDEX IF NOT EXISTS sessions_reward_score_idx
    ON sessions (((reward_stats ->> 'score')::float)) WHERE reward_stats IS NOT NULL;
CREATE INDEX IF NOT EXISTS sessions_created_at_idx ON sessions (created_at DESC);
CREATE INDEX IF NOT EXISTS sessions_metadata_gin_idx ON sessions USING gin (metadata);

CREATE TABLE IF NOT EXISTS plans (
    session_id INTEGER PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
    plan JSONB NOT NULL
);
CREATE TABLE IF NOT EXISTS step_results (
    session_id INTEGER REFERENCES sessions(id) ON DELETE CASCADE,
    step_id INTEGER NOT NULL,
    trace TEXT,
    output TEXT,
    evaluation JSONB,
    attempts INTEGER,
    metadata JSONB,
    PRIMARY KEY (session_id, step_id)
);
CREATE TABLE IF NOT EXISTS step_attempts (
    session_id INTEGER REFERENCES sessions(id) ON DELETE CASCADE,
    step_id INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    evaluation JSONB,
    PRIMARY KEY (session_id, step_id, attempt)
);
CREATE TABLE IF NOT EXISTS guidance_notes (
    session_id INTEGER REFERENCES sessions(id) ON DELETE CASCADE,
    step_id INTEGER NOT NULL,
    sequence INTEGER NOT NULL,
    note TEXT NOT NULL,
    PRIMARY KEY (session_id, step_id, sequence)
);
CREATE TABLE IF NOT EXISTS trajectory_events (
    id SERIAL PRIMARY KEY,
    session_id INTEGER REFERENCES sessions(id) ON DELETE CASCADE,
    event JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE TABLE IF NOT EXISTS discovery_runs (
    id SERIAL PRIMARY KEY,
    project_root TEXT NOT NULL,
    task TEXT,
    source TEXT NOT NULL DEFAULT 'discovery',
    payload JSONB NOT NULL,
    metadata JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE TABLE IF NOT EXISTS learning_registry (
    learning_key TEXT PRIMARY KEY,
    student_learning TEXT,
    teacher_learning TEXT,
    metadata JSONB,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
