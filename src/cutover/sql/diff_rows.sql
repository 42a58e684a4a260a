-- The rows of organization $1 that differ between legacy and partitioned,
-- per table: (table, key, legacy row text, partitioned row text); a side
-- without the row gives NULL. Zero-only summary rows count as absent.
WITH lr AS (SELECT id, (id, organization_id, property_id, business_date, category, amount_cents,
                        description, created_at)::text AS t
              FROM {{l_revenue}} WHERE organization_id = $1),
     pr AS (SELECT id, (id, organization_id, property_id, business_date, category, amount_cents,
                        description, created_at)::text AS t
              FROM {{p_revenue}} WHERE organization_id = $1),
     le AS (SELECT id, (id, organization_id, property_id, business_date, category, amount_cents,
                        vendor, description, created_at)::text AS t
              FROM {{l_expense}} WHERE organization_id = $1),
     pe AS (SELECT id, (id, organization_id, property_id, business_date, category, amount_cents,
                        vendor, description, created_at)::text AS t
              FROM {{p_expense}} WHERE organization_id = $1),
     ls AS (SELECT property_id || ' ' || business_date AS k,
                   (organization_id, property_id, business_date, revenue_cents, expense_cents,
                    revenue_count, expense_count)::text AS t
              FROM {{l_summary}} WHERE organization_id = $1
               AND (revenue_count, expense_count, revenue_cents, expense_cents) <> (0, 0, 0, 0)),
     ps AS (SELECT property_id || ' ' || business_date AS k,
                   (organization_id, property_id, business_date, revenue_cents, expense_cents,
                    revenue_count, expense_count)::text AS t
              FROM {{p_summary}} WHERE organization_id = $1
               AND (revenue_count, expense_count, revenue_cents, expense_cents) <> (0, 0, 0, 0))
SELECT 'revenue', coalesce(lr.id, pr.id)::text, lr.t, pr.t
  FROM lr FULL JOIN pr ON lr.id = pr.id WHERE lr.t IS DISTINCT FROM pr.t
UNION ALL
SELECT 'expense', coalesce(le.id, pe.id)::text, le.t, pe.t
  FROM le FULL JOIN pe ON le.id = pe.id WHERE le.t IS DISTINCT FROM pe.t
UNION ALL
SELECT 'summary', coalesce(ls.k, ps.k), ls.t, ps.t
  FROM ls FULL JOIN ps ON ls.k = ps.k WHERE ls.t IS DISTINCT FROM ps.t
ORDER BY 1, 2
