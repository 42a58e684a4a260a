-- Hardened summary maintenance: one atomic upsert per summary row. Concurrent
-- writers to the same (organization, property, day) serialize on the row
-- lock that ON CONFLICT takes, and each adds its own delta: nothing is lost.
CREATE OR REPLACE FUNCTION {{apply_fn}}(
    is_revenue boolean, org bigint, prop bigint, day date, d_cents bigint, d_count integer)
RETURNS void LANGUAGE sql AS $fn$
    INSERT INTO {{summary}} AS s (organization_id, property_id, business_date,
                                  revenue_cents, expense_cents, revenue_count, expense_count, updated_at)
    VALUES (org, prop, day,
            CASE WHEN is_revenue THEN d_cents ELSE 0 END,
            CASE WHEN is_revenue THEN 0 ELSE d_cents END,
            CASE WHEN is_revenue THEN d_count ELSE 0 END,
            CASE WHEN is_revenue THEN 0 ELSE d_count END,
            now())
    ON CONFLICT (organization_id, property_id, business_date) DO UPDATE SET
        revenue_cents = s.revenue_cents + EXCLUDED.revenue_cents,
        expense_cents = s.expense_cents + EXCLUDED.expense_cents,
        revenue_count = s.revenue_count + EXCLUDED.revenue_count,
        expense_count = s.expense_count + EXCLUDED.expense_count,
        updated_at = now()
$fn$;
