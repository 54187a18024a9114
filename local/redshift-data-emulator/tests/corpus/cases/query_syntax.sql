-- Query syntax: TOP, MINUS, PIVOT/UNPIVOT, #temp tables, CTEs, joins, set operations.
-- case: top_n
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_TOP_clause.html
select top 3 salesid, pricepaid from sales order by pricepaid desc;
-- case: top_n_values
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_TOP_clause.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 11
-- expect: 10
select top 2 catid from category order by catid desc;
-- case: top_distinct
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_TOP_clause.html
select distinct top 2 catgroup from category order by catgroup;
-- case: top_in_subquery
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_TOP_clause.html
select count(*) from (select top 5 * from sales order by salesid);
-- case: limit_offset
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_ORDER_BY_clause.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 3
-- expect: 4
select catid from category order by catid limit 2 offset 2;
-- case: minus
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_UNION.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 6
select userid from users minus select buyerid from sales where buyerid <> 6 order by 1 limit 1;
-- case: minus_values
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_UNION.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 1
select 1 minus select 2;
-- case: except
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_UNION.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 1
select 1 except select 2;
-- case: intersect
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_UNION.html
select listid from listing intersect select listid from sales order by 1;
-- case: union_all
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_UNION.html
select catname from category where catid = 1 union all select catname from category where catid = 2 order by 1;
-- case: pivot
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_FROM_clause-pivot-unpivot-examples.html
select * from (select catgroup, catid from category) pivot (count(catid) for catgroup in ('Sports', 'Shows', 'Concerts'));
-- case: unpivot
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_FROM_clause-pivot-unpivot-examples.html
select * from (select 1 as a, 2 as b) unpivot (val for col in (a, b));
-- case: temp_table_hash
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_CREATE_TABLE_NEW.html
create table #newtable (id int);
insert into #newtable values (1);
select count(*) from #newtable;
-- case: select_into_temp_hash
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_SELECT_INTO.html
select * into #sales_tmp from sales where salesid < 3;
select count(*) from #sales_tmp;
-- case: create_temp_table
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_CREATE_TABLE_NEW.html
create temp table t_tmp (a int);
insert into t_tmp values (1);
select * from t_tmp;
-- case: with_cte
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_WITH_clause.html
with venue_sales as (select venuename, venuecity, sum(pricepaid) as venuename_sales from sales, venue, event where venue.venueid=event.venueid and event.eventid=sales.eventid group by venuename, venuecity), top_venues as (select venuename from venue_sales where venuename_sales > 100) select venuename, venuecity from venue_sales where venuename in (select venuename from top_venues) order by 1;
-- case: with_recursive
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_WITH_clause.html
with recursive n(x) as (select 1 union all select x + 1 from n where x < 5) select sum(x) from n;
-- case: join_using
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_Join_examples.html
select count(*) from sales join listing using (listid);
-- case: left_join_nvl
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_Join_examples.html
select v.venueid, nvl(count(e.eventid), 0) from venue v left join event e on v.venueid = e.venueid group by 1 order by 1;
-- case: comma_join
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_Join_examples.html
select count(*) from sales, event where sales.eventid = event.eventid;
-- case: oracle_outer_join
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_WHERE_oracle_outer.html
select count(*) from category c, event e where c.catid = e.catid (+);
-- case: subquery_in
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_Subquery_examples.html
select count(*) from sales where eventid in (select eventid from event where catid = 9);
-- case: ilike
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_patternmatching_condition_like.html
select catname from category where catname ilike 'm%' order by 1;
-- case: similar_to
-- source: https://docs.aws.amazon.com/redshift/latest/dg/pattern-matching-conditions-similar-to.html
select count(*) from category where catname similar to '%(M|m)%';
-- case: regex_operator
-- source: https://docs.aws.amazon.com/redshift/latest/dg/pattern-matching-conditions-posix.html
select count(*) from category where catdesc ~ 'League';
-- case: between_dates
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_range_condition.html
select count(*) from sales where saletime between '2008-01-01' and '2008-06-30';
-- case: cast_varchar
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_CAST_function.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 12
select cast(12.34 as integer);
-- case: convert_function
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_CAST_function.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 12
select convert(integer, 12.34);
-- case: double_colon_cast
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_CAST_function.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 2008-01-01
select '2008-01-01'::date;
-- case: order_by_nulls_first
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_ORDER_BY_clause.html
select likesports from users order by likesports nulls first limit 1;
-- case: group_by_alias
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_GROUP_BY_clause.html
select catgroup as g, count(*) from category group by g order by g;
-- case: lateral_alias_reference
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_SELECT_list.html
select pricepaid * 2 as doubled, doubled + 1 as plus_one from sales order by salesid limit 1;
