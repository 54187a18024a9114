-- VACUUM / ANALYZE and their options (Redshift runs VACUUM outside a transaction block).
-- case: vacuum_plain
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_VACUUM_command.html
-- autocommit
vacuum;
-- case: vacuum_table
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_VACUUM_command.html
-- autocommit
vacuum sales;
-- case: vacuum_full_to_percent
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_VACUUM_command.html
-- autocommit
vacuum full sales to 75 percent;
-- case: vacuum_sort_only
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_VACUUM_command.html
-- autocommit
vacuum sort only sales;
-- case: vacuum_delete_only
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_VACUUM_command.html
-- autocommit
vacuum delete only sales to 100 percent;
-- case: vacuum_reindex
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_VACUUM_command.html
-- autocommit
vacuum reindex listing;
-- case: vacuum_recluster_boost
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_VACUUM_command.html
-- autocommit
vacuum recluster sales boost;
-- case: analyze_plain
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_ANALYZE.html
analyze;
-- case: analyze_table_columns
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_ANALYZE.html
analyze listing(listid, totalprice, listtime);
-- case: analyze_predicate_columns
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_ANALYZE.html
analyze sales predicate columns;
-- case: analyze_all_columns
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_ANALYZE.html
analyze venue all columns;
-- case: analyze_verbose
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_ANALYZE.html
analyze verbose event;
-- case: analyze_compression
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_ANALYZE_COMPRESSION.html
-- needs: Redshift's compression analysis
-- error: not emulated locally
analyze compression listing;
-- case: explain
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_EXPLAIN.html
explain select count(*) from sales;
-- case: lock_table
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_LOCK.html
lock event, sales;
-- case: begin_end
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_BEGIN.html
-- autocommit
begin;
select 1;
end;
-- case: cancel_none
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_ABORT.html
-- autocommit
begin;
abort;
