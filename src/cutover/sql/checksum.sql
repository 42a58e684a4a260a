-- Row counts and an order-independent checksum of one side's entries and
-- summaries for organizations $1 to $2: the sum of a 64-bit hash of each
-- row's text. Summary rows that hold only zeros (every entry of the day was
-- voided) count as absent; updated_at is when a trigger last ran, not data.
SELECT (SELECT count(*) FROM {{revenue}} WHERE organization_id BETWEEN $1 AND $2),
       (SELECT coalesce(sum(hashtextextended(r::text, 0)::numeric), 0)::text
          FROM (SELECT id, organization_id, property_id, business_date, category, amount_cents,
                       description, created_at
                  FROM {{revenue}} WHERE organization_id BETWEEN $1 AND $2) r),
       (SELECT count(*) FROM {{expense}} WHERE organization_id BETWEEN $1 AND $2),
       (SELECT coalesce(sum(hashtextextended(r::text, 0)::numeric), 0)::text
          FROM (SELECT id, organization_id, property_id, business_date, category, amount_cents,
                       vendor, description, created_at
                  FROM {{expense}} WHERE organization_id BETWEEN $1 AND $2) r),
       (SELECT count(*) FROM {{summary}} WHERE organization_id BETWEEN $1 AND $2
           AND (revenue_count, expense_count, revenue_cents, expense_cents) <> (0, 0, 0, 0)),
       (SELECT coalesce(sum(hashtextextended(r::text, 0)::numeric), 0)::text
          FROM (SELECT organization_id, property_id, business_date, revenue_cents, expense_cents,
                       revenue_count, expense_count
                  FROM {{summary}} WHERE organization_id BETWEEN $1 AND $2
                   AND (revenue_count, expense_count, revenue_cents, expense_cents) <> (0, 0, 0, 0)) r)
