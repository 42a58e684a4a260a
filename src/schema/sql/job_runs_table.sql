-- One row per run of a maintenance job (rehearse job run, or pg_cron).
CREATE TABLE IF NOT EXISTS rehearse_job_runs (
    id           bigserial   PRIMARY KEY,
    job          text        NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL,
    -- Nothing wrong found, and everything checked.
    ok           boolean     NOT NULL,
    -- Every chunk was done within the budget.
    complete     boolean     NOT NULL,
    summary      text        NOT NULL,
    detail       jsonb       NOT NULL
);
CREATE INDEX IF NOT EXISTS rehearse_job_runs_job ON rehearse_job_runs (job, id);
