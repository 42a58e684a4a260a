ALTER TABLE organizations ADD CONSTRAINT organizations_pkey PRIMARY KEY (id);
ALTER TABLE properties ADD CONSTRAINT properties_pkey PRIMARY KEY (id);
ALTER TABLE properties ADD CONSTRAINT properties_organization_fkey
    FOREIGN KEY (organization_id) REFERENCES organizations (id);
CREATE INDEX IF NOT EXISTS properties_organization_idx ON properties (organization_id);
