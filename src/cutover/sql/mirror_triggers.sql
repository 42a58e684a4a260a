-- Attach one direction's mirror to its side's entry tables. Row triggers fire
-- in name order, so "zz_..." fires after summary_maintenance: a write locks
-- the summary row of the side it was sent to, then the other side's. Every
-- writer of one side (a batch locks its own side's summary rows first, too)
-- takes them in the same order, so the mirror adds no deadlock between them.
-- Only in the moment of a switch, while some processes still write to the
-- side they read the flag for earlier, can two writers meet in opposite
-- orders; PostgreSQL then aborts one (40P01) and the repository retries it.
CREATE TRIGGER {{trigger}}
    AFTER INSERT OR UPDATE OR DELETE ON {{from_revenue}}
    FOR EACH ROW EXECUTE FUNCTION {{mirror_fn}}('revenue');
CREATE TRIGGER {{trigger}}
    AFTER INSERT OR UPDATE OR DELETE ON {{from_expense}}
    FOR EACH ROW EXECUTE FUNCTION {{mirror_fn}}('expense');
