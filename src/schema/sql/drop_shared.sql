DROP TABLE IF EXISTS properties, organizations, feature_flags, feature_flag_rollouts, rehearse_job_runs, portfolio_rankings CASCADE;
DROP SEQUENCE IF EXISTS revenue_entry_id_seq, expense_entry_id_seq;
DROP TYPE IF EXISTS entry_category;
