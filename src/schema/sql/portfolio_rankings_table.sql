-- The cross-tenant portfolio: the organizations with the most revenue over
-- the last N days, per mode, kept by the portfolio-refresh job
-- (rehearse_job_portfolio_refresh, on pg_cron) instead of aggregating every
-- summary row of the window per request, which at 1M organizations takes
-- seconds of both cores and spills to disk. A read serves the latest
-- ranking at most one day older than the day it asks for, and says its age
-- (as_of, refreshed_at); with none it fails rather than answer empty.
CREATE TABLE IF NOT EXISTS portfolio_rankings (
    mode             text        NOT NULL,
    window_days      integer     NOT NULL,
    as_of            date        NOT NULL,
    rank             integer     NOT NULL,
    organization_id  bigint      NOT NULL,
    revenue_cents    bigint      NOT NULL,
    expense_cents    bigint      NOT NULL,
    refreshed_at     timestamptz NOT NULL,
    PRIMARY KEY (mode, window_days, as_of, rank)
);
