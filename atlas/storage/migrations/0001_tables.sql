-- The eight tables of the Atlas persistence schema.
--
-- Written with IF NOT EXISTS throughout so the same migration turns an empty
-- database into the current schema and leaves a database made by an older
-- Atlas installation (same tables, fewer columns) with every row intact.
-- Every child table is keyed by session_id so the schema can be distributed by it.

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

-- Columns that early Atlas releases did not have yet.
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS metadata JSONB;
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS final_answer TEXT;
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS reward JSONB;
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS reward_stats JSONB;
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS reward_audit JSONB;
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS student_learning TEXT;
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS teacher_learning TEXT;
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS review_status TEXT NOT NULL DEFAULT 'pending';
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS review_notes TEXT;
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS completed_at TIMESTAMPTZ;

CREATE TABLE IF NOT EXISTS plans (
    session_id INTEGER PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
    plan JSONB
);
-- Older installations declared plan NOT NULL; a session whose plan could not
-- be produced is still worth keeping.
ALTER TABLE plans ALTER COLUMN plan DROP NOT NULL;

CREATE TABLE IF NOT EXISTS step_results (
    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    step_id INTEGER NOT NULL,
    trace TEXT,
    output TEXT,
    evaluation JSONB,
    attempts INTEGER,
    metadata JSONB,
    PRIMARY KEY (session_id, step_id)
);
ALTER TABLE step_results ADD COLUMN IF NOT EXISTS metadata JSONB;

CREATE TABLE IF NOT EXISTS step_attempts (
    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    step_id INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    evaluation JSONB,
    PRIMARY KEY (session_id, step_id, attempt)
);

CREATE TABLE IF NOT EXISTS guidance_notes (
    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
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
    payload JSONB NOT NULL DEFAULT '{}'::jsonb,
    metadata JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
ALTER TABLE discovery_runs ADD COLUMN IF NOT EXISTS source TEXT NOT NULL DEFAULT 'discovery';
ALTER TABLE discovery_runs ADD COLUMN IF NOT EXISTS metadata JSONB;

CREATE TABLE IF NOT EXISTS learning_registry (
    learning_key TEXT PRIMARY KEY,
    student_learning TEXT,
    teacher_learning TEXT,
    metadata JSONB,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
ALTER TABLE learning_registry ADD COLUMN IF NOT EXISTS metadata JSONB;
