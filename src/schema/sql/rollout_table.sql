-- A flag's phased rollout (rehearse rollout): while the flag is false, an
-- organization is on the flag's side when it is allowed, or not denied and
-- its salted bucket (0..9999) is under basis_points.
CREATE TABLE IF NOT EXISTS feature_flag_rollouts (
    name          text        PRIMARY KEY,
    basis_points  integer     NOT NULL CHECK (basis_points BETWEEN 0 AND 10000),
    salt          text        NOT NULL,
    allow_orgs    bigint[]    NOT NULL DEFAULT '{}',
    deny_orgs     bigint[]    NOT NULL DEFAULT '{}',
    updated_at    timestamptz NOT NULL DEFAULT now()
);
