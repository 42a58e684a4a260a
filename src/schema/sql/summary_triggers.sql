-- The row trigger on one mode's entry tables. It turns each insert, update
-- and delete into deltas for {{apply_fn}} (hardened or naive), unless the
-- transaction set rehearse.summaries to 'set-based'. An update that
-- moves an entry touches two summary rows; they are always taken in key
-- order, so two moves in opposite directions cannot deadlock.
CREATE OR REPLACE FUNCTION {{trigger_fn}}() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    is_revenue constant boolean := TG_ARGV[0] = 'revenue';
BEGIN
    -- A bulk writer that maintains the summaries itself, set-based, in the
    -- same transaction (the cutover's backfill) says so for its transaction.
    IF current_setting('rehearse.summaries', true) = 'set-based' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        PERFORM {{apply_fn}}(is_revenue, NEW.organization_id, NEW.property_id, NEW.business_date,
                             NEW.amount_cents, 1);
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM {{apply_fn}}(is_revenue, OLD.organization_id, OLD.property_id, OLD.business_date,
                             -OLD.amount_cents, -1);
    ELSIF (OLD.organization_id, OLD.property_id, OLD.business_date)
        = (NEW.organization_id, NEW.property_id, NEW.business_date) THEN
        IF NEW.amount_cents <> OLD.amount_cents THEN
            PERFORM {{apply_fn}}(is_revenue, NEW.organization_id, NEW.property_id, NEW.business_date,
                                 NEW.amount_cents - OLD.amount_cents, 0);
        END IF;
    ELSIF (OLD.organization_id, OLD.property_id, OLD.business_date)
        < (NEW.organization_id, NEW.property_id, NEW.business_date) THEN
        PERFORM {{apply_fn}}(is_revenue, OLD.organization_id, OLD.property_id, OLD.business_date,
                             -OLD.amount_cents, -1);
        PERFORM {{apply_fn}}(is_revenue, NEW.organization_id, NEW.property_id, NEW.business_date,
                             NEW.amount_cents, 1);
    ELSE
        PERFORM {{apply_fn}}(is_revenue, NEW.organization_id, NEW.property_id, NEW.business_date,
                             NEW.amount_cents, 1);
        PERFORM {{apply_fn}}(is_revenue, OLD.organization_id, OLD.property_id, OLD.business_date,
                             -OLD.amount_cents, -1);
    END IF;
    RETURN NULL;
END
$fn$;

DROP TRIGGER IF EXISTS summary_maintenance ON {{revenue}};
CREATE TRIGGER summary_maintenance
    AFTER INSERT OR DELETE OR UPDATE OF organization_id, property_id, business_date, amount_cents
    ON {{revenue}} FOR EACH ROW EXECUTE FUNCTION {{trigger_fn}}('revenue');
DROP TRIGGER IF EXISTS summary_maintenance ON {{expense}};
CREATE TRIGGER summary_maintenance
    AFTER INSERT OR DELETE OR UPDATE OF organization_id, property_id, business_date, amount_cents
    ON {{expense}} FOR EACH ROW EXECUTE FUNCTION {{trigger_fn}}('expense');
