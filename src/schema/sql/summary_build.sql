-- Fill one mode's summaries for organizations $1 to $2 from its entries, set
-- based, after a bulk load (the row triggers are not there yet).
INSERT INTO {{summary}} (organization_id, property_id, business_date,
                         revenue_cents, expense_cents, revenue_count, expense_count)
{{aggregate}}
