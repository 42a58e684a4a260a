-- The dual-write mirror of one direction: a row trigger on one side's entry
-- tables that repeats every insert, update and delete on the other side's
-- ({{to_revenue}}, {{to_expense}}) in the same transaction. It copies entries
-- only: each side's summaries are kept by that side's own summary trigger,
-- which fires for the mirrored row, so nothing is counted twice.
--
-- Not mirrored: a write the other direction's mirror made (trigger depth > 1),
-- so the two directions never loop, and a transaction that set
-- rehearse.mirror to 'off' (the backfill, a deliberate one-sided repair).
-- Updates are upserts: an entry the backfill has not copied yet arrives
-- whole, and the backfill's later copy of the old version is skipped.
CREATE OR REPLACE FUNCTION {{mirror_fn}}() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    IF pg_trigger_depth() > 1 OR current_setting('rehearse.mirror', true) = 'off' THEN
        RETURN NULL;
    END IF;
    IF TG_ARGV[0] = 'revenue' THEN
        IF TG_OP = 'DELETE' THEN
            DELETE FROM {{to_revenue}} WHERE organization_id = OLD.organization_id AND id = OLD.id;
            RETURN NULL;
        END IF;
        IF TG_OP = 'UPDATE' THEN
            IF (OLD.organization_id, OLD.id) <> (NEW.organization_id, NEW.id) THEN
                DELETE FROM {{to_revenue}} WHERE organization_id = OLD.organization_id AND id = OLD.id;
            END IF;
        END IF;
        INSERT INTO {{to_revenue}} AS t (id, organization_id, property_id, business_date, category,
                                         amount_cents, description, created_at)
        VALUES (NEW.id, NEW.organization_id, NEW.property_id, NEW.business_date, NEW.category,
                NEW.amount_cents, NEW.description, NEW.created_at)
        ON CONFLICT ({{to_entry_key}}) DO UPDATE SET
            property_id = EXCLUDED.property_id, business_date = EXCLUDED.business_date,
            category = EXCLUDED.category, amount_cents = EXCLUDED.amount_cents,
            description = EXCLUDED.description, created_at = EXCLUDED.created_at;
    ELSE
        IF TG_OP = 'DELETE' THEN
            DELETE FROM {{to_expense}} WHERE organization_id = OLD.organization_id AND id = OLD.id;
            RETURN NULL;
        END IF;
        IF TG_OP = 'UPDATE' THEN
            IF (OLD.organization_id, OLD.id) <> (NEW.organization_id, NEW.id) THEN
                DELETE FROM {{to_expense}} WHERE organization_id = OLD.organization_id AND id = OLD.id;
            END IF;
        END IF;
        INSERT INTO {{to_expense}} AS t (id, organization_id, property_id, business_date, category,
                                         amount_cents, vendor, description, created_at)
        VALUES (NEW.id, NEW.organization_id, NEW.property_id, NEW.business_date, NEW.category,
                NEW.amount_cents, NEW.vendor, NEW.description, NEW.created_at)
        ON CONFLICT ({{to_entry_key}}) DO UPDATE SET
            property_id = EXCLUDED.property_id, business_date = EXCLUDED.business_date,
            category = EXCLUDED.category, amount_cents = EXCLUDED.amount_cents,
            vendor = EXCLUDED.vendor, description = EXCLUDED.description,
            created_at = EXCLUDED.created_at;
    END IF;
    RETURN NULL;
END
$fn$;
