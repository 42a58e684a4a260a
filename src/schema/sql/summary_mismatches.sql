-- How many (organization, property, day) rows of one mode's summary table
-- differ from the aggregate of that mode's entries. Zero means exact. A
-- summary row whose entries were all deleted holds zeros and counts as equal.
WITH agg AS (
    SELECT organization_id, property_id, business_date,
           sum(rev)::bigint AS revenue_cents, sum(exp)::bigint AS expense_cents,
           sum(rc)::integer AS revenue_count, sum(ec)::integer AS expense_count
      FROM (SELECT organization_id, property_id, business_date,
                   amount_cents AS rev, 0::bigint AS exp, 1 AS rc, 0 AS ec
              FROM {{revenue}}
            UNION ALL
            SELECT organization_id, property_id, business_date,
                   0::bigint, amount_cents, 0, 1
              FROM {{expense}}) e
     GROUP BY organization_id, property_id, business_date
)
SELECT count(*)
  FROM agg FULL JOIN {{summary}} s USING (organization_id, property_id, business_date)
 WHERE (coalesce(agg.revenue_cents, 0), coalesce(agg.expense_cents, 0),
        coalesce(agg.revenue_count, 0), coalesce(agg.expense_count, 0))
       IS DISTINCT FROM
       (coalesce(s.revenue_cents, 0), coalesce(s.expense_cents, 0),
        coalesce(s.revenue_count, 0), coalesce(s.expense_count, 0))
