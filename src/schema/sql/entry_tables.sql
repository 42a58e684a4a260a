-- One mode's entry and summary tables. The partition clause below is empty for the
-- legacy mode and `PARTITION BY HASH (organization_id)` for the partitioned one.
CREATE TABLE IF NOT EXISTS {{revenue}} (
    id               bigint      NOT NULL DEFAULT nextval('revenue_entry_id_seq'),
    organization_id  bigint      NOT NULL,
    property_id      bigint      NOT NULL,
    business_date    date        NOT NULL,
    category         entry_category NOT NULL,
    amount_cents     bigint      NOT NULL CHECK (amount_cents > 0),
    description      text,
    created_at       timestamptz NOT NULL DEFAULT now()
) {{partition_by}};

CREATE TABLE IF NOT EXISTS {{expense}} (
    id               bigint      NOT NULL DEFAULT nextval('expense_entry_id_seq'),
    organization_id  bigint      NOT NULL,
    property_id      bigint      NOT NULL,
    business_date    date        NOT NULL,
    category         entry_category NOT NULL,
    amount_cents     bigint      NOT NULL CHECK (amount_cents > 0),
    vendor           text        NOT NULL,
    description      text,
    created_at       timestamptz NOT NULL DEFAULT now()
) {{partition_by}};

CREATE TABLE IF NOT EXISTS {{summary}} (
    organization_id  bigint      NOT NULL,
    property_id      bigint      NOT NULL,
    business_date    date        NOT NULL,
    revenue_cents    bigint      NOT NULL DEFAULT 0,
    expense_cents    bigint      NOT NULL DEFAULT 0,
    revenue_count    integer     NOT NULL DEFAULT 0,
    expense_count    integer     NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now()
) {{partition_by}};
