-- The aggregate of one mode's entries per (organization, property, day), for
-- organizations $1 to $2. Summaries are compared with it to prove them exact.
SELECT organization_id, property_id, business_date,
       sum(rev)::bigint AS revenue_cents, sum(exp)::bigint AS expense_cents,
       sum(rc)::integer AS revenue_count, sum(ec)::integer AS expense_count
  FROM (SELECT organization_id, property_id, business_date,
               amount_cents AS rev, 0::bigint AS exp, 1 AS rc, 0 AS ec
          FROM {{revenue}} WHERE organization_id BETWEEN $1 AND $2
        UNION ALL
        SELECT organization_id, property_id, business_date,
               0::bigint, amount_cents, 0, 1
          FROM {{expense}} WHERE organization_id BETWEEN $1 AND $2) e
 GROUP BY organization_id, property_id, business_date
