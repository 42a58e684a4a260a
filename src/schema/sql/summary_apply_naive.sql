-- The pre-hardening variant, kept to show the race it had: read the summary
-- row, then write back the value computed from what was read. Two writers
-- that read the same row both write their own sum, and one delta is lost;
-- two that both find no row both insert, and one fails.
CREATE OR REPLACE FUNCTION {{apply_fn}}(
    is_revenue boolean, org bigint, prop bigint, day date, d_cents bigint, d_count integer)
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    cur record;
BEGIN
    SELECT revenue_cents, expense_cents, revenue_count, expense_count INTO cur
      FROM {{summary}}
     WHERE organization_id = org AND property_id = prop AND business_date = day;
    IF FOUND THEN
        UPDATE {{summary}} SET
            revenue_cents = cur.revenue_cents + CASE WHEN is_revenue THEN d_cents ELSE 0 END,
            expense_cents = cur.expense_cents + CASE WHEN is_revenue THEN 0 ELSE d_cents END,
            revenue_count = cur.revenue_count + CASE WHEN is_revenue THEN d_count ELSE 0 END,
            expense_count = cur.expense_count + CASE WHEN is_revenue THEN 0 ELSE d_count END,
            updated_at = now()
         WHERE organization_id = org AND property_id = prop AND business_date = day;
    ELSE
        INSERT INTO {{summary}} (organization_id, property_id, business_date,
                                 revenue_cents, expense_cents, revenue_count, expense_count)
        VALUES (org, prop, day,
                CASE WHEN is_revenue THEN d_cents ELSE 0 END,
                CASE WHEN is_revenue THEN 0 ELSE d_cents END,
                CASE WHEN is_revenue THEN d_count ELSE 0 END,
                CASE WHEN is_revenue THEN 0 ELSE d_count END);
    END IF;
END
$fn$;
