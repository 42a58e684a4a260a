-- Tables both modes share, and the id sequences both modes' entry tables
-- draw from (so a mirrored row keeps its id on the other side).
CREATE SEQUENCE IF NOT EXISTS revenue_entry_id_seq;
CREATE SEQUENCE IF NOT EXISTS expense_entry_id_seq;

-- The entries' categories: an enum is 4 bytes in the row where the text was
-- 6 to 14 bytes and its alignment, over 60M rows per mode at the full
-- estate. Reads cast it to text; writes cast a text parameter to it. The
-- labels are the generator's (a unit test holds the two lists together).
DO $$ BEGIN
    CREATE TYPE entry_category AS ENUM (
        'rooms', 'food_beverage', 'spa', 'other',
        'payroll', 'supplies', 'utilities', 'maintenance', 'marketing');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

CREATE TABLE IF NOT EXISTS organizations (
    id          bigint      NOT NULL,
    name        text        NOT NULL,
    country     text        NOT NULL,
    city        text        NOT NULL,
    currency    text        NOT NULL,
    size_tier   text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS properties (
    id               bigint  NOT NULL,
    organization_id  bigint  NOT NULL,
    name             text    NOT NULL,
    kind             text    NOT NULL,
    size             integer NOT NULL,
    city             text    NOT NULL
);

-- Feature flags the repository layer reads with a short cache; the row
-- USE_PARTITIONED_TABLES switches the finance tables a running process uses.
CREATE TABLE IF NOT EXISTS feature_flags (
    name        text        PRIMARY KEY,
    enabled     boolean     NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);


