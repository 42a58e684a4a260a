-- rehearse's maintenance jobs, as functions, so that `rehearse job run`
-- and pg_cron (`rehearse job install`) run the same code. Each records one
-- row in rehearse_job_runs and returns its id. Each is safe beside the
-- workload: reads take a snapshot per statement, ANALYZE takes a SHARE
-- UPDATE EXCLUSIVE lock that no insert, update or delete waits for, and
-- lock_timeout bounds every lock wait. Each stops starting new work when its
-- time budget is spent and then says what it left unchecked.

-- rehearse_job_runs: src/schema/sql/job_runs_table.sql, prepended by the loader.


-- The finance tables of each mode that exists, and the chunks a job walks:
-- each partition of a partitioned table (matched across the three tables by
-- its bound), or ranges of organizations of a plain one.
CREATE OR REPLACE FUNCTION rehearse_job_chunks(p_ranges int DEFAULT 16)
RETURNS TABLE (mode text, chunk text, rev regclass, exp regclass, summ regclass, filter text)
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    m record;
    lo bigint;
    hi bigint;
    step bigint;
    i int;
BEGIN
    FOR m IN
        SELECT v.mode, to_regclass(v.rev) AS rev, to_regclass(v.exp) AS exp, to_regclass(v.summ) AS summ
          FROM (VALUES ('legacy', 'revenue_entries', 'expense_entries', 'daily_financial_summaries'),
                       ('partitioned', 'revenue_entries_partitioned', 'expense_entries_partitioned',
                        'daily_financial_summaries_partitioned')) AS v(mode, rev, exp, summ)
         WHERE to_regclass(v.summ) IS NOT NULL AND to_regclass(v.rev) IS NOT NULL
           AND to_regclass(v.exp) IS NOT NULL
    LOOP
        IF EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = m.summ) THEN
            -- Every leaf of every table, matched by its bound. A bound that
            -- one table lacks is returned too, with no filter: the caller
            -- counts it unchecked, never leaves it out.
            RETURN QUERY
            WITH leaves AS (
                SELECT t.kind, p.relid, pg_get_expr(c.relpartbound, c.oid) AS bound
                  FROM (VALUES ('summary', m.summ), ('revenue', m.rev), ('expense', m.exp)) AS t(kind, parent)
                 CROSS JOIN LATERAL pg_partition_tree(t.parent) p
                  JOIN pg_class c ON c.oid = p.relid
                 WHERE p.isleaf),
            b AS (
                SELECT l.bound,
                       (array_agg(l.relid) FILTER (WHERE l.kind = 'summary'))[1]::regclass AS s,
                       (array_agg(l.relid) FILTER (WHERE l.kind = 'revenue'))[1]::regclass AS r,
                       (array_agg(l.relid) FILTER (WHERE l.kind = 'expense'))[1]::regclass AS e
                  FROM leaves l
                 GROUP BY l.bound)
            SELECT m.mode,
                   CASE WHEN b.s IS NOT NULL AND b.r IS NOT NULL AND b.e IS NOT NULL THEN b.s::text
                        ELSE format('%s: no %s partition %s', coalesce(b.s, b.r, b.e)::text,
                                    concat_ws(' or ', CASE WHEN b.s IS NULL THEN 'summary' END,
                                              CASE WHEN b.r IS NULL THEN 'revenue' END,
                                              CASE WHEN b.e IS NULL THEN 'expense' END),
                                    coalesce(b.bound, '(no bound)')) END,
                   b.r, b.e, b.s,
                   CASE WHEN b.s IS NOT NULL AND b.r IS NOT NULL AND b.e IS NOT NULL THEN 'true' END
              FROM b
             ORDER BY coalesce(b.s, b.r, b.e)::text COLLATE "C";
        ELSE
            SELECT coalesce(min(id), 1), coalesce(max(id), 0) INTO lo, hi FROM organizations;
            step := greatest(1, (hi - lo + p_ranges) / p_ranges);
            i := 0;
            WHILE lo + i * step <= hi LOOP
                mode := m.mode;
                chunk := format('organizations %s..%s', lo + i * step, lo + (i + 1) * step - 1);
                rev := m.rev;
                exp := m.exp;
                summ := m.summ;
                filter := format('organization_id BETWEEN %s AND %s', lo + i * step, lo + (i + 1) * step - 1);
                RETURN NEXT;
                i := i + 1;
            END LOOP;
        END IF;
    END LOOP;
END
$fn$;

-- reconcile: every daily summary row against the aggregate of its entries,
-- chunk by chunk, each chunk in one snapshot (the triggers keep a summary in
-- the entry's own transaction, so a snapshot never sees half a write).

-- One chunk: the summary rows that differ from their entries, counted per
-- organization. Revenue and expense are aggregated apart and joined to the
-- summaries: at 1M organizations about 15% faster per chunk than one
-- aggregate over a UNION ALL of both. (A larger work_mem made the legacy
-- chunks slower: the planner left its sorted group aggregates.)
CREATE OR REPLACE FUNCTION rehearse_job_reconcile_chunk(p_rev regclass, p_exp regclass, p_summ regclass,
                                                        p_filter text, p_max_orgs int,
                                                        OUT drift bigint, OUT orgs jsonb, OUT orgs_capped boolean)
LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE format($q$
        WITH r AS (SELECT organization_id, property_id, business_date,
                          sum(amount_cents) AS amount, count(*) AS n
                     FROM %1$s WHERE %4$s GROUP BY 1, 2, 3),
             x AS (SELECT organization_id, property_id, business_date,
                          sum(amount_cents) AS amount, count(*) AS n
                     FROM %2$s WHERE %4$s GROUP BY 1, 2, 3),
             s AS (SELECT organization_id, property_id, business_date,
                          revenue_cents, expense_cents, revenue_count, expense_count
                     FROM %3$s WHERE %4$s),
             d AS (SELECT organization_id, count(*) AS n
                     FROM r FULL JOIN x USING (organization_id, property_id, business_date)
                            FULL JOIN s USING (organization_id, property_id, business_date)
                    WHERE (coalesce(r.amount, 0), coalesce(x.amount, 0), coalesce(r.n, 0), coalesce(x.n, 0))
                          IS DISTINCT FROM
                          (coalesce(s.revenue_cents, 0), coalesce(s.expense_cents, 0),
                           coalesce(s.revenue_count, 0), coalesce(s.expense_count, 0))
                    GROUP BY 1)
        SELECT (SELECT coalesce(sum(n), 0)::bigint FROM d),
               (SELECT coalesce(jsonb_object_agg(organization_id, n), '{}')
                  FROM (SELECT organization_id, n FROM d ORDER BY organization_id LIMIT %5$s) y),
               (SELECT count(*) > %5$s FROM d)$q$, p_rev, p_exp, p_summ, p_filter, p_max_orgs)
    INTO drift, orgs, orgs_capped;
END
$fn$;

-- Each mode's totals over a list of chunk results.
CREATE OR REPLACE FUNCTION rehearse_job_reconcile_modes(p_chunks jsonb, p_max_orgs int)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $fn$
    SELECT coalesce(jsonb_object_agg(m.mode, jsonb_build_object(
               'chunks', m.chunks, 'checked', m.checked, 'drift_rows', m.drift_rows,
               'organizations', (SELECT coalesce(jsonb_agg(o ORDER BY o), '[]')
                                   FROM (SELECT DISTINCT k::bigint AS o
                                           FROM jsonb_array_elements(p_chunks) e,
                                                jsonb_object_keys(coalesce(e->'orgs', '{}')) k
                                          WHERE e->>'mode' = m.mode
                                          ORDER BY 1 LIMIT p_max_orgs) y))), '{}')
      FROM (SELECT e->>'mode' AS mode, count(*) AS chunks,
                   count(*) FILTER (WHERE (e->>'checked')::boolean) AS checked,
                   coalesce(sum((e->>'drift_rows')::bigint), 0) AS drift_rows
              FROM jsonb_array_elements(p_chunks) e GROUP BY 1) m
$fn$;

-- The whole estate (p_orgs NULL, job 'reconcile'), or only the named
-- organizations (job 'reconcile-scoped'). A scoped run checks its
-- organizations in every chunk, then carries the last reconcile's per-chunk
-- state forward with those organizations' counts replaced by what it found:
-- drift elsewhere stays as the last full run left it, so a clean scoped run
-- never clears drift it did not check. Only a full run makes the estate
-- `complete` (and only a full run counts for ReconcileStale).
CREATE OR REPLACE FUNCTION rehearse_job_reconcile_run(p_budget interval, p_max_orgs int, p_orgs bigint[])
RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
    started timestamptz := clock_timestamp();
    c record;
    t0 timestamptz;
    res record;
    chunks jsonb := '[]';
    state jsonb;
    modes jsonb;
    total bigint := 0;
    unchecked int := 0;
    unmatched int := 0;
    checked int := 0;
    base_id bigint;
    base_full bigint;
    base jsonb;
    summary text;
    run_id bigint;
BEGIN
    PERFORM set_config('lock_timeout', '2s', true);
    FOR c IN SELECT * FROM rehearse_job_chunks() LOOP
        IF c.filter IS NULL THEN
            -- A partition with no counterpart in the other tables: its rows
            -- cannot be reconciled, and say so.
            unchecked := unchecked + 1;
            unmatched := unmatched + 1;
            chunks := chunks || jsonb_build_object('mode', c.mode, 'chunk', c.chunk, 'checked', false,
                                                   'why', 'unmatched');
            CONTINUE;
        END IF;
        IF clock_timestamp() - started > p_budget THEN
            unchecked := unchecked + 1;
            chunks := chunks || jsonb_build_object('mode', c.mode, 'chunk', c.chunk, 'checked', false);
            CONTINUE;
        END IF;
        t0 := clock_timestamp();
        SELECT * INTO res FROM rehearse_job_reconcile_chunk(c.rev, c.exp, c.summ,
            CASE WHEN p_orgs IS NULL THEN c.filter
                 ELSE format('(%s) AND organization_id = ANY (%L::bigint[])', c.filter, p_orgs) END,
            p_max_orgs);
        total := total + res.drift;
        checked := checked + 1;
        chunks := chunks || jsonb_build_object('mode', c.mode, 'chunk', c.chunk, 'checked', true,
            'drift_rows', res.drift, 'orgs', res.orgs, 'orgs_capped', res.orgs_capped,
            'seconds', round(extract(epoch FROM clock_timestamp() - t0)::numeric, 3));
    END LOOP;

    IF p_orgs IS NULL THEN
        state := chunks;
        modes := rehearse_job_reconcile_modes(state, p_max_orgs);
        INSERT INTO rehearse_job_runs (job, started_at, finished_at, ok, complete, summary, detail)
        VALUES ('reconcile', started, clock_timestamp(), total = 0 AND unchecked = 0 AND checked > 0,
                unchecked = 0 AND checked > 0,
                CASE WHEN checked = 0 AND unchecked = 0 THEN 'nothing to check: no finance tables with entries and summaries'
                     WHEN unchecked > 0 THEN format('%s summary rows differ in the %s chunks checked; %s chunks NOT checked (%s with no matching partition in the other tables, %s left when the budget of %s was spent)',
                                                    total, checked, unchecked, unmatched, unchecked - unmatched, p_budget)
                     WHEN total > 0 THEN format('%s summary rows differ from their entries', total)
                     ELSE format('every summary row matches its entries (%s chunks checked)', checked) END,
                jsonb_build_object('modes', modes, 'chunks', state, 'drift_rows', total,
                                   'checked_chunks', checked, 'unchecked_chunks', unchecked,
                                   'unmatched_chunks', unmatched, 'max_orgs', p_max_orgs))
        RETURNING id INTO run_id;
        RETURN run_id;
    END IF;

    -- Scoped: the estate's state as the last reconcile (full or scoped) left
    -- it, with the scope's organizations replaced where this run checked them.
    SELECT r.id, r.detail,
           CASE WHEN r.job = 'reconcile' THEN r.id ELSE (r.detail->>'base_full_run')::bigint END
      INTO base_id, base, base_full
      FROM rehearse_job_runs r
     WHERE r.job IN ('reconcile', 'reconcile-scoped')
     ORDER BY r.id DESC LIMIT 1;
    WITH n AS (SELECT e->>'mode' AS mode, e->>'chunk' AS chunk, e AS entry
                 FROM jsonb_array_elements(chunks) e),
         b AS (SELECT e->>'mode' AS mode, e->>'chunk' AS chunk, e AS entry
                 FROM jsonb_array_elements(coalesce(base->'chunks', '[]')) e),
         j AS (SELECT mode, chunk, b.entry AS b, n.entry AS n,
                      coalesce((n.entry->>'checked')::boolean, false) AS now_checked,
                      coalesce(b.entry->'orgs', '{}') AS b_orgs
                 FROM n FULL JOIN b USING (mode, chunk))
    SELECT coalesce(jsonb_agg(
               jsonb_build_object(
                   'mode', mode, 'chunk', chunk,
                   -- Coverage is the full run's: a scope checks a few organizations.
                   'checked', coalesce((b->>'checked')::boolean, false),
                   'drift_rows', coalesce((b->>'drift_rows')::bigint, 0)
                       - CASE WHEN now_checked
                              THEN (SELECT coalesce(sum((b_orgs->>o::text)::bigint), 0) FROM unnest(p_orgs) o)
                              ELSE 0 END
                       + CASE WHEN now_checked THEN (n->>'drift_rows')::bigint ELSE 0 END,
                   'orgs', CASE WHEN now_checked
                                THEN (b_orgs - (SELECT array_agg(o::text) FROM unnest(p_orgs) o)) || (n->'orgs')
                                ELSE b_orgs END,
                   'orgs_capped', coalesce((b->>'orgs_capped')::boolean, false)
                                  OR coalesce((n->>'orgs_capped')::boolean, false))
               || CASE WHEN b IS NULL THEN '{"why": "no full reconcile checked it"}'::jsonb ELSE '{}' END
               ORDER BY mode, chunk COLLATE "C"), '[]')
      INTO state
      FROM j;
    modes := rehearse_job_reconcile_modes(state, p_max_orgs);
    summary := format('%s summary rows differ among organizations %s (%s chunks checked%s); ',
                      total, array_to_string(p_orgs, ','), checked,
                      CASE WHEN unchecked > 0 THEN format(', %s NOT checked', unchecked) ELSE '' END)
            || CASE WHEN base_full IS NULL
                    THEN 'no full reconcile has run: the rest of the estate is unchecked'
                    ELSE format('the estate, as of full run %s and the scoped runs since: %s summary rows differ',
                                base_full, (SELECT coalesce(sum((e->>'drift_rows')::bigint), 0)
                                              FROM jsonb_array_elements(state) e)) END;
    INSERT INTO rehearse_job_runs (job, started_at, finished_at, ok, complete, summary, detail)
    VALUES ('reconcile-scoped', started, clock_timestamp(), total = 0 AND unchecked = 0 AND checked > 0,
            unchecked = 0 AND checked > 0, summary,
            jsonb_build_object('scope', to_jsonb(p_orgs), 'base_run', base_id, 'base_full_run', base_full,
                               'scope_drift_rows', total, 'checked_chunks', checked,
                               'unchecked_chunks', unchecked, 'unmatched_chunks', unmatched,
                               'modes', modes, 'chunks', state,
                               'drift_rows', (SELECT coalesce(sum((e->>'drift_rows')::bigint), 0)
                                                FROM jsonb_array_elements(state) e),
                               'max_orgs', p_max_orgs))
    RETURNING id INTO run_id;
    RETURN run_id;
END
$fn$;

CREATE OR REPLACE FUNCTION rehearse_job_reconcile(p_budget interval DEFAULT '10 minutes',
                                                  p_max_orgs int DEFAULT 100)
RETURNS bigint LANGUAGE sql AS $fn$
    SELECT rehearse_job_reconcile_run(p_budget, p_max_orgs, NULL)
$fn$;

CREATE OR REPLACE FUNCTION rehearse_job_reconcile_orgs(p_orgs bigint[],
                                                       p_budget interval DEFAULT '10 minutes',
                                                       p_max_orgs int DEFAULT 100)
RETURNS bigint LANGUAGE sql AS $fn$
    SELECT rehearse_job_reconcile_run(p_budget, p_max_orgs, p_orgs)
$fn$;

-- analyze: the partitioned parents, which autovacuum never analyzes (the
-- planner's estimates for a query on a parent come from them), and every
-- partition or plain table whose changes since its last analyze pass
-- autovacuum's own threshold (50 rows + 10% of its rows), or that was never
-- analyzed.
CREATE OR REPLACE FUNCTION rehearse_job_analyze(p_budget interval DEFAULT '10 minutes')
RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
    started timestamptz := clock_timestamp();
    t record;
    t0 timestamptz;
    done jsonb := '[]';
    skipped jsonb := '[]';
    run_id bigint;
BEGIN
    PERFORM set_config('lock_timeout', '2s', true);
    FOR t IN
        WITH finance AS (
            SELECT to_regclass(n) AS rel FROM unnest(ARRAY[
                'revenue_entries', 'expense_entries', 'daily_financial_summaries',
                'revenue_entries_partitioned', 'expense_entries_partitioned',
                'daily_financial_summaries_partitioned']) n),
        -- pg_partition_tree gives nothing for a plain table: it is its own leaf.
        tree AS (
            SELECT p.relid, p.isleaf, f.rel AS root
              FROM finance f, pg_partition_tree(f.rel) p WHERE f.rel IS NOT NULL
            UNION ALL
            SELECT f.rel, true, f.rel FROM finance f JOIN pg_class c ON c.oid = f.rel
             WHERE c.relkind = 'r' AND NOT c.relispartition)
        SELECT tree.relid::regclass AS rel,
               CASE WHEN NOT tree.isleaf THEN 'partitioned parent'
                    WHEN s.last_analyze IS NULL AND s.last_autoanalyze IS NULL THEN 'never analyzed'
                    ELSE format('%s rows changed since its last analyze, over 50 + 10%% of %s',
                                s.n_mod_since_analyze, c.reltuples::bigint) END AS why
          FROM tree
          JOIN pg_class c ON c.oid = tree.relid
          LEFT JOIN pg_stat_user_tables s ON s.relid = tree.relid
         WHERE NOT tree.isleaf
            OR (s.last_analyze IS NULL AND s.last_autoanalyze IS NULL)
            OR s.n_mod_since_analyze > 50 + 0.1 * greatest(c.reltuples, 0)
         ORDER BY tree.isleaf, tree.relid::regclass::text COLLATE "C"
    LOOP
        IF clock_timestamp() - started > p_budget THEN
            skipped := skipped || jsonb_build_object('table', t.rel::text, 'why', t.why);
            CONTINUE;
        END IF;
        t0 := clock_timestamp();
        -- A parent's ANALYZE samples its partitions; ONLY would skip them.
        EXECUTE format('ANALYZE %s', t.rel);
        done := done || jsonb_build_object('table', t.rel::text, 'why', t.why,
            'seconds', round(extract(epoch FROM clock_timestamp() - t0)::numeric, 3));
    END LOOP;
    INSERT INTO rehearse_job_runs (job, started_at, finished_at, ok, complete, summary, detail)
    VALUES ('analyze', started, clock_timestamp(), jsonb_array_length(skipped) = 0,
            jsonb_array_length(skipped) = 0,
            format('analyzed %s tables (%s partitioned parents)%s', jsonb_array_length(done),
                   (SELECT count(*) FROM jsonb_array_elements(done) d WHERE d->>'why' = 'partitioned parent'),
                   CASE WHEN jsonb_array_length(skipped) > 0
                        THEN format('; %s left for the next run (budget %s spent)', jsonb_array_length(skipped), p_budget)
                        ELSE '' END),
            jsonb_build_object('analyzed', done, 'left', skipped))
    RETURNING id INTO run_id;
    RETURN run_id;
END
$fn$;

-- partition-report: rows, size, skew and dead tuples per partition (and per
-- plain finance table), from the statistics: no table is scanned. Skew is a
-- partition's rows over the mean of its parent's partitions.
CREATE OR REPLACE FUNCTION rehearse_job_partition_report()
RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
    started timestamptz := clock_timestamp();
    rows_ jsonb;
    worst jsonb;
    run_id bigint;
BEGIN
    WITH finance AS (
        SELECT to_regclass(n) AS rel FROM unnest(ARRAY[
            'revenue_entries', 'expense_entries', 'daily_financial_summaries',
            'revenue_entries_partitioned', 'expense_entries_partitioned',
            'daily_financial_summaries_partitioned']) n),
    leaves AS (
        SELECT f.rel AS parent, p.relid
          FROM finance f, pg_partition_tree(f.rel) p WHERE f.rel IS NOT NULL AND p.isleaf
        UNION ALL
        SELECT f.rel, f.rel FROM finance f JOIN pg_class c ON c.oid = f.rel
         WHERE c.relkind = 'r' AND NOT c.relispartition),
    stats AS (
        SELECT l.parent::text AS parent, l.relid::regclass::text AS partition,
               greatest(c.reltuples, 0)::bigint AS rows,
               pg_total_relation_size(l.relid) AS bytes,
               coalesce(s.n_dead_tup, 0) AS dead_rows,
               coalesce(s.n_live_tup, 0) AS live_rows,
               to_char(greatest(s.last_analyze, s.last_autoanalyze) AT TIME ZONE 'UTC',
                       'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS analyzed_at,
               to_char(greatest(s.last_vacuum, s.last_autovacuum) AT TIME ZONE 'UTC',
                       'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS vacuumed_at
          FROM leaves l JOIN pg_class c ON c.oid = l.relid
          LEFT JOIN pg_stat_user_tables s ON s.relid = l.relid),
    skewed AS (
        SELECT *, round((rows / nullif(avg(rows) OVER (PARTITION BY parent), 0))::numeric, 3) AS skew,
               round((dead_rows::numeric / nullif(live_rows + dead_rows, 0)), 4) AS dead_ratio
          FROM stats)
    SELECT coalesce(jsonb_agg(to_jsonb(skewed) ORDER BY parent, partition COLLATE "C"), '[]'),
           (SELECT to_jsonb(w) FROM skewed w ORDER BY w.skew DESC NULLS LAST LIMIT 1)
      INTO rows_, worst
      FROM skewed;
    INSERT INTO rehearse_job_runs (job, started_at, finished_at, ok, complete, summary, detail)
    VALUES ('partition-report', started, clock_timestamp(), true, true,
            format('%s tables or partitions; the most skewed: %s at %s times its parent''s mean',
                   jsonb_array_length(rows_), coalesce(worst->>'partition', '-'), coalesce(worst->>'skew', '-')),
            jsonb_build_object('partitions', rows_))
    RETURNING id INTO run_id;
    RETURN run_id;
END
$fn$;

-- portfolio-refresh: the cross-tenant ranking of each mode that exists, for
-- the windows the platform shows (7, 14 and 30 days ending p_as_of: by
-- default the last day of the seeded estate, else today), p_depth
-- organizations deep. One transaction: readers see the old ranking until
-- the new one commits, never half of it. Its cost is one aggregation of the
-- window per mode and window, paid once per schedule instead of per request.
CREATE OR REPLACE FUNCTION rehearse_job_portfolio_refresh(p_as_of date DEFAULT NULL,
                                                          p_windows int[] DEFAULT '{7,14,30}',
                                                          p_depth int DEFAULT 1000)
RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
    started timestamptz := clock_timestamp();
    as_of date := p_as_of;
    m record;
    w int;
    n bigint;
    t0 timestamptz;
    done jsonb := '[]';
    run_id bigint;
BEGIN
    PERFORM set_config('lock_timeout', '2s', true);
    -- The aggregation of 1M organizations fits in memory at this size.
    PERFORM set_config('work_mem', '256MB', true);
    IF as_of IS NULL THEN
        SELECT (value #>> '{params,end_date}')::date INTO as_of
          FROM rehearse_meta WHERE key = 'seed';
    END IF;
    as_of := coalesce(as_of, current_date);
    FOR m IN
        SELECT v.mode, v.summ
          FROM (VALUES ('legacy', 'daily_financial_summaries'),
                       ('partitioned', 'daily_financial_summaries_partitioned')) AS v(mode, summ)
         WHERE to_regclass(v.summ) IS NOT NULL
    LOOP
        FOREACH w IN ARRAY p_windows LOOP
            t0 := clock_timestamp();
            DELETE FROM portfolio_rankings WHERE mode = m.mode AND window_days = w;
            EXECUTE format($q$
                INSERT INTO portfolio_rankings (mode, window_days, as_of, rank, organization_id,
                                                revenue_cents, expense_cents, refreshed_at)
                SELECT %L, %s, %L::date, row_number() OVER (ORDER BY revenue DESC, organization_id),
                       organization_id, revenue, expense, now()
                  FROM (SELECT organization_id, sum(revenue_cents)::int8 AS revenue,
                               sum(expense_cents)::int8 AS expense
                          FROM %I
                         WHERE business_date BETWEEN %L::date - (%s - 1) AND %L::date
                         GROUP BY organization_id
                         ORDER BY revenue DESC, organization_id
                         LIMIT %s) top$q$,
                m.mode, w, as_of, m.summ, as_of, w, as_of, p_depth);
            GET DIAGNOSTICS n = ROW_COUNT;
            done := done || jsonb_build_object('mode', m.mode, 'window_days', w, 'rows', n,
                'seconds', round(extract(epoch FROM clock_timestamp() - t0)::numeric, 3));
        END LOOP;
    END LOOP;
    INSERT INTO rehearse_job_runs (job, started_at, finished_at, ok, complete, summary, detail)
    VALUES ('portfolio-refresh', started, clock_timestamp(), jsonb_array_length(done) > 0,
            jsonb_array_length(done) > 0,
            CASE WHEN jsonb_array_length(done) = 0 THEN 'no finance tables: nothing ranked'
                 ELSE format('%s rankings as of %s, %s deep', jsonb_array_length(done), as_of, p_depth) END,
            jsonb_build_object('as_of', as_of, 'depth', p_depth, 'rankings', done))
    RETURNING id INTO run_id;
    RETURN run_id;
END
$fn$;
