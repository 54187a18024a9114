-- Aggregates: AVG of integers, LISTAGG, MEDIAN, PERCENTILE_CONT, APPROXIMATE COUNT, ...
-- case: avg_int_is_integer
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_AVG.html
-- note: derived (from the page's definition, not an example output shown on it)
-- note: AVG of an integer column truncates to an integer (Return types)
-- expect: 2
select avg(x) from (select 1 as x union all select 2 union all select 4) t;
-- case: avg_qtysold
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_AVG.html
select avg(qtysold) from sales;
-- case: avg_numeric
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_AVG.html
select avg(pricepaid) from sales;
-- case: avg_bigint
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_AVG.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 2
select avg(x::bigint) from (select 2 as x union all select 3) t;
-- case: avg_smallint
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_AVG.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 1
select avg(x::smallint) from (select 1 as x union all select 2) t;
-- case: avg_float
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_AVG.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 1.5
select avg(x::float) from (select 1 as x union all select 2) t;
-- case: listagg_within_group
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_LISTAGG.html
select listagg(catname, ',') within group (order by catname) from category where catgroup = 'Concerts';
-- case: listagg_documented_concerts
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_LISTAGG.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: Classical,Jazz,Pop
select listagg(catname, ',') within group (order by catname) from category where catgroup = 'Concerts';
-- case: listagg_no_delimiter
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_LISTAGG.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: MLBMLSNBANFLNHL
select listagg(catname) within group (order by catname) from category where catgroup = 'Sports';
-- case: listagg_distinct
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_LISTAGG.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: Concerts, Shows, Sports
select listagg(distinct catgroup, ', ') within group (order by catgroup) from category;
-- case: listagg_group_by
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_LISTAGG.html
select catgroup, listagg(catname, ',') within group (order by catid) from category group by catgroup order by 1;
-- case: listagg_no_within
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_LISTAGG.html
select length(listagg(catname, ',')) from category;
-- case: median
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_MEDIAN.html
select median(pricepaid) from sales;
-- case: median_group_by
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_MEDIAN.html
select sellerid, median(pricepaid) from sales group by sellerid order by 1;
-- case: percentile_cont
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_PERCENTILE_CONT.html
select percentile_cont(0.5) within group (order by pricepaid) from sales;
-- case: percentile_disc
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_PERCENTILE_DISC.html
select percentile_disc(0.5) within group (order by pricepaid) from sales;
-- case: percentile_cont_over
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_WF_PERCENTILE_CONT.html
select sellerid, percentile_cont(0.5) within group (order by pricepaid) over (partition by sellerid) from sales order by 1;
-- case: median_over
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_WF_MEDIAN.html
select sellerid, median(pricepaid) over (partition by sellerid) from sales order by 1;
-- case: approximate_count_distinct
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_COUNT.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 6
select approximate count(distinct sellerid) from sales;
-- case: approximate_percentile_disc
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_APPROXIMATE_PERCENTILE_DISC.html
select approximate percentile_disc(0.5) within group (order by pricepaid) from sales;
-- case: count_distinct
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_COUNT.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 6
select count(distinct sellerid) from sales;
-- case: sum_group
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_SUM.html
select eventid, sum(pricepaid) from sales group by eventid order by 1;
-- case: max_min
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_MAX.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 720.00 | 50.50
select max(pricepaid), min(pricepaid) from sales;
-- case: stddev
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_STDDEV_functions.html
select stddev_samp(pricepaid), stddev_pop(pricepaid), variance(pricepaid) from sales;
-- case: bool_and_or
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_BOOL_AND.html
select bool_and(likesports), bool_or(likesports) from users;
-- case: bit_and_or
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_BIT_AND.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 0 | 7
select bit_and(x), bit_or(x) from (select 1 as x union all select 2 union all select 4) t;
-- case: any_value
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_ANY_VALUE.html
select any_value(catgroup) from category where catid = 1;
-- case: count_star_having
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_HAVING_clause.html
select catgroup, count(*) from category group by catgroup having count(*) > 3 order by 1;
-- case: group_by_ordinal
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_GROUP_BY_clause.html
select catgroup, count(*) from category group by 1 order by 1;
-- case: grouping_sets
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_GROUP_BY_aggregation-extensions.html
select catgroup, count(*) from category group by grouping sets ((catgroup), ()) order by 1;
-- case: rollup
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_GROUP_BY_aggregation-extensions.html
select catgroup, count(*) from category group by rollup (catgroup) order by 1;
