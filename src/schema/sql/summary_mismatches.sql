-- How many (organization, property, day) rows of one mode's summary table,
-- for organizations $1 to $2, differ from the aggregate of that mode's
-- entries. Zero means exact. A summary row whose entries were all deleted
-- holds zeros and counts as equal. The aggregate is summary_aggregate.sql.
WITH agg AS ({{aggregate}})
SELECT count(*)
  FROM agg
  FULL JOIN (SELECT * FROM {{summary}} WHERE organization_id BETWEEN $1 AND $2) s
       USING (organization_id, property_id, business_date)
 WHERE (coalesce(agg.revenue_cents, 0), coalesce(agg.expense_cents, 0),
        coalesce(agg.revenue_count, 0), coalesce(agg.expense_count, 0))
       IS DISTINCT FROM
       (coalesce(s.revenue_cents, 0), coalesce(s.expense_cents, 0),
        coalesce(s.revenue_count, 0), coalesce(s.expense_count, 0))
