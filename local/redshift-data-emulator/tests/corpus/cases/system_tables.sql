-- System tables and views.
-- case: svv_tables
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_SVV_TABLES.html
select table_name from svv_tables where table_schema = 'public' and table_name = 'sales';
-- case: svv_columns
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_SVV_COLUMNS.html
select column_name, data_type from svv_columns where table_name = 'category' order by ordinal_position;
-- case: pg_table_def
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_PG_TABLE_DEF.html
select "column", type, encoding, distkey, sortkey from pg_table_def where tablename = 'category';
-- case: information_schema_tables
-- source: https://docs.aws.amazon.com/redshift/latest/dg/c_join_PG.html
select count(*) from information_schema.tables where table_schema = 'public';
-- case: pg_namespace
-- source: https://docs.aws.amazon.com/redshift/latest/dg/c_join_PG.html
select count(*) from pg_namespace where nspname = 'public';
-- case: svv_table_info
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_SVV_TABLE_INFO.html
-- needs: Redshift's storage and distribution statistics
-- error: not emulated locally
select "table", diststyle, tbl_rows from svv_table_info;
-- case: stl_load_errors
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_STL_LOAD_ERRORS.html
-- needs: Redshift's load history
-- error: not emulated locally
select * from stl_load_errors order by starttime desc limit 1;
-- case: stl_query
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_STL_QUERY.html
-- needs: Redshift's query history
-- error: not emulated locally
select query, querytxt from stl_query order by starttime desc limit 5;
-- case: sys_query_history
-- source: https://docs.aws.amazon.com/redshift/latest/dg/SYS_QUERY_HISTORY.html
-- needs: Redshift's query history
-- error: not emulated locally
select query_id from sys_query_history limit 1;
-- case: stv_sessions
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_STV_SESSIONS.html
-- needs: Redshift's session table
-- error: not emulated locally
select * from stv_sessions;
-- case: svl_qlog
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_SVL_QLOG.html
-- needs: Redshift's query log
-- error: not emulated locally
select query from svl_qlog limit 1;
-- case: pg_last_query_id
-- source: https://docs.aws.amazon.com/redshift/latest/dg/PG_LAST_QUERY_ID.html
-- needs: Redshift's query ids
-- error: not emulated locally
select pg_last_query_id();
-- case: current_user
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_CURRENT_USER.html
select current_user is not null;
-- case: version
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_VERSION.html
select length(version()) > 0;
