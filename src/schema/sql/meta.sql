-- rehearse's own record of what this database holds: schema version, modes,
-- partition count, trigger variant and, later, seed parameters.
CREATE TABLE IF NOT EXISTS rehearse_meta (
    key         text        PRIMARY KEY,
    value       jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
