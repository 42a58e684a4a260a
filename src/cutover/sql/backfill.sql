-- One backfill batch: copy the legacy entries of organizations $1 to $2 into
-- the partitioned tables and add exactly the copied rows to the partitioned
-- summaries, set-based (the row trigger stands aside: rehearse.summaries is
-- 'set-based' for this transaction, and rehearse.mirror is 'off' so the copy
-- is not mirrored back).
--
-- FOR SHARE holds the source rows until commit: an update or delete of one
-- of them waits, then its mirror finds the copy; one that committed first is
-- seen (the re-check after the wait reads the newest version, or skips a
-- deleted row). ON CONFLICT DO NOTHING skips rows the mirror already wrote.
WITH rev AS (
    INSERT INTO {{p_revenue}} (id, organization_id, property_id, business_date, category,
                               amount_cents, description, created_at)
    SELECT id, organization_id, property_id, business_date, category,
           amount_cents, description, created_at
      FROM {{l_revenue}} WHERE organization_id BETWEEN $1 AND $2
       FOR SHARE
    ON CONFLICT (organization_id, id) DO NOTHING
    RETURNING organization_id, property_id, business_date, amount_cents
), exp AS (
    INSERT INTO {{p_expense}} (id, organization_id, property_id, business_date, category,
                               amount_cents, vendor, description, created_at)
    SELECT id, organization_id, property_id, business_date, category,
           amount_cents, vendor, description, created_at
      FROM {{l_expense}} WHERE organization_id BETWEEN $1 AND $2
       FOR SHARE
    ON CONFLICT (organization_id, id) DO NOTHING
    RETURNING organization_id, property_id, business_date, amount_cents
), agg AS (
    SELECT organization_id, property_id, business_date,
           sum(r)::bigint AS r, sum(e)::bigint AS e, sum(rn)::integer AS rn, sum(en)::integer AS en
      FROM (SELECT organization_id, property_id, business_date, amount_cents AS r, 0::bigint AS e, 1 AS rn, 0 AS en FROM rev
            UNION ALL
            SELECT organization_id, property_id, business_date, 0::bigint, amount_cents, 0, 1 FROM exp) x
     GROUP BY organization_id, property_id, business_date
), up AS (
    INSERT INTO {{p_summary}} AS s (organization_id, property_id, business_date,
                                    revenue_cents, expense_cents, revenue_count, expense_count)
    SELECT organization_id, property_id, business_date, r, e, rn, en
      FROM agg ORDER BY organization_id, property_id, business_date
    ON CONFLICT (organization_id, property_id, business_date) DO UPDATE SET
        revenue_cents = s.revenue_cents + EXCLUDED.revenue_cents,
        expense_cents = s.expense_cents + EXCLUDED.expense_cents,
        revenue_count = s.revenue_count + EXCLUDED.revenue_count,
        expense_count = s.expense_count + EXCLUDED.expense_count,
        updated_at = now()
    RETURNING 1
)
SELECT (SELECT count(*) FROM rev), (SELECT count(*) FROM exp), (SELECT count(*) FROM up)
