-- Stored procedures and SQL UDFs, with Redshift syntax inside the $$ body.
-- case: sql_udf
-- source: https://docs.aws.amazon.com/redshift/latest/dg/udf-creating-a-scalar-sql-udf.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 2
create function f_sql_greater (float, float) returns float stable as $$ select case when $1 > $2 then $1 else $2 end $$ language sql;
select f_sql_greater(1, 2);
-- case: procedure_inout
-- source: https://docs.aws.amazon.com/redshift/latest/dg/stored-procedure-create.html
create or replace procedure test_sp1(f1 int, f2 varchar(20)) as $$
declare
  min_val int;
begin
  drop table if exists tmp_tbl;
  create temp table tmp_tbl(id int);
  insert into tmp_tbl values (f1),(10001),(10002);
  select into min_val min(id) from tmp_tbl;
  raise info 'min_val = %, f2 = %', min_val, f2;
end;
$$ language plpgsql;
call test_sp1(5, 'abc');
-- case: procedure_argmode_after_name
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_CREATE_PROCEDURE.html
create or replace procedure test_sp2(f1 in int, f2 inout varchar(256), out_var out varchar(256)) as $$
declare
  loop_var int;
begin
  if f1 is null or f2 is null then
    raise exception 'input cannot be null';
  end if;
  drop table if exists my_etl;
  create temp table my_etl(a int, b varchar);
  for loop_var in 1..f1 loop
    insert into my_etl values (loop_var, f2);
    f2 := f2 || '+' || f2;
  end loop;
  select into out_var count(*) from my_etl;
end;
$$ language plpgsql;
call test_sp2(2, '2019');
-- case: procedure_body_redshift_functions
-- source: https://docs.aws.amazon.com/redshift/latest/dg/stored-procedure-create.html
create or replace procedure sp_nvl_getdate() as $$
declare
  d timestamp;
  n int;
begin
  d := dateadd(day, 1, getdate());
  n := nvl(null, 3);
  raise info 'n = %, len = %', n, len('abc');
end;
$$ language plpgsql;
call sp_nvl_getdate();
-- case: procedure_nonatomic
-- source: https://docs.aws.amazon.com/redshift/latest/dg/stored-procedure-nonatomic-mode.html
-- autocommit
create or replace procedure sp_nonatomic() nonatomic as $$
begin
  create temp table t_na(a int);
  insert into t_na values (1);
end;
$$ language plpgsql;
call sp_nonatomic();
drop procedure sp_nonatomic();
-- case: procedure_security_definer
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_CREATE_PROCEDURE.html
create or replace procedure sp_definer() as $$
begin
  perform 1;
end;
$$ language plpgsql security definer;
call sp_definer();
-- case: procedure_dynamic_sql
-- source: https://docs.aws.amazon.com/redshift/latest/dg/c_PLpgSQL-statements.html
create or replace procedure sp_dyn(tbl varchar) as $$
begin
  execute 'create temp table ' || tbl || ' (a int)';
end;
$$ language plpgsql;
call sp_dyn('t_dyn');
-- case: procedure_refcursor
-- source: https://docs.aws.amazon.com/redshift/latest/dg/stored-procedure-result-set.html
create or replace procedure get_result_set (param in integer, rs_out inout refcursor) as $$
begin
  open rs_out for select * from category where catid < param;
end;
$$ language plpgsql;
begin;
call get_result_set(3, 'mycursor');
fetch all from mycursor;
commit;
-- case: procedure_exception_block
-- source: https://docs.aws.amazon.com/redshift/latest/dg/c_PLpgSQL-statements.html
create or replace procedure sp_exc() as $$
begin
  perform 1 / 0;
exception when others then
  raise info 'caught';
end;
$$ language plpgsql;
call sp_exc();
