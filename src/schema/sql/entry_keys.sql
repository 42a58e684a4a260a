-- Keys and indexes of one mode, built after a bulk load. {{entry_key}} is
-- `id` for legacy and `id, organization_id` for partitioned, where every
-- unique key must include the partition key (id first, so inserts append
-- to the key as they do on legacy: see FinanceTables::entry_key).
ALTER TABLE {{revenue}} ADD CONSTRAINT {{revenue}}_pkey PRIMARY KEY ({{entry_key}});
CREATE INDEX IF NOT EXISTS {{revenue}}_org_date_idx ON {{revenue}} (organization_id, business_date, id);
ALTER TABLE {{expense}} ADD CONSTRAINT {{expense}}_pkey PRIMARY KEY ({{entry_key}});
CREATE INDEX IF NOT EXISTS {{expense}}_org_date_idx ON {{expense}} (organization_id, business_date, id);
ALTER TABLE {{summary}} ADD CONSTRAINT {{summary}}_pkey
    PRIMARY KEY (organization_id, property_id, business_date);
