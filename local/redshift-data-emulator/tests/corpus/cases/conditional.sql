-- NVL / NVL2 / DECODE / COALESCE / NULLIF / GREATEST / CASE.
-- case: nvl_literal
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_NVL_function.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: default
select nvl(null, 'default');
-- case: nvl_three_args
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_NVL_function.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: second
select nvl(null, 'second', 'third');
-- case: nvl_column
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_NVL_function.html
select nvl(likesports, false) from users order by userid;
-- case: coalesce_column
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_NVL_function.html
select coalesce(likeopera, likejazz, false) from users order by userid;
-- case: nvl2_literal
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_NVL2.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: b
select nvl2(null::int, 'a', 'b');
-- case: nvl2_column
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_NVL2.html
select nvl2(likesports, 'known', 'unknown') from users order by userid;
-- case: decode_case
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DECODE_expression.html
select decode(caldate, '2008-06-01', 'June 1st, 2008') from date where month='JUN' order by caldate;
-- case: decode_default
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DECODE_expression.html
select venuestate, decode(venuestate, 'CA', 'California', 'OH', 'Ohio', 'Other') from venue order by venueid;
-- case: decode_literal
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DECODE_expression.html
-- note: derived
-- expect: two
select decode(2, 1, 'one', 2, 'two', 'many');
-- case: decode_no_default
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DECODE_expression.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: NULL
select decode(3, 1, 'one', 2, 'two');
-- case: nullif_column
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_NULLIF_function.html
select nullif(venueseats, 0) from venue order by venueid;
-- case: nullif_literal
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_NULLIF_function.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: NULL
select nullif('a', 'a');
-- case: greatest_least
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_GREATEST_LEAST.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 3 | 1
select greatest(1, 2, 3), least(1, 2, 3);
-- case: greatest_columns
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_GREATEST_LEAST.html
select firstname, lastname, greatest(firstname,lastname), least(firstname,lastname) from users where userid < 4 order by 3;
-- case: case_simple
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_CASE_function.html
select venuecity, case venuecity when 'Toronto' then 'Canada' else 'USA' end from venue order by venueid;
-- case: case_searched
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_CASE_function.html
select pricepaid, case when pricepaid < 100 then 'cheap' when pricepaid < 400 then 'mid' else 'dear' end from sales order by salesid;
-- case: isnull_not_supported_is_nvl
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_NVL_function.html
-- expect: 0
select nvl(sum(venueseats) filter (where venueid < 0), 0) from venue;
