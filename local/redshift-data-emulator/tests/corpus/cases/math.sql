-- Math functions.
-- case: abs
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_ABS.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 38
select abs(-38);
-- case: cbrt
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_CBRT.html
select cbrt(27::float);
-- case: ceiling_floor
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_CEILING_FLOOR.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 2 | 1
select ceiling(1.2), floor(1.8);
-- case: dexp
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DEXP.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 7.38905609893065
select dexp(2);
-- case: dlog1
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DLOG1.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 0.999999999895305
select dlog1(2.718281828);
-- case: dlog10
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DLOG10.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 2
select dlog10(100);
-- case: exp
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_EXP.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 7.38905609893065
select exp(2::float);
-- case: ln
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_LN.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 0.999999999895305
select ln(2.718281828::float);
-- case: log
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_LOG.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 2
select log(100::float);
-- case: mod
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_MOD.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 2
select mod(10, 4);
-- case: pi
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_PI.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 3.14159265358979
select pi();
-- case: power
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_POWER.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 8
select power(2, 3);
-- case: radians_degrees
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_RADIANS.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 3.14159265358979
select radians(180);
-- case: round
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_ROUND.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 112 | 111.9
select round(111.86), round(111.86, 1);
-- case: sign_numeric
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_SIGN.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: -1
select sign(-8::numeric);
-- case: sqrt
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_SQRT.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 4
select sqrt(16::float);
-- case: random_range
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_RANDOM.html
select random() between 0 and 1;
-- case: integer_division
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_numeric_computations201.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 2
select 5 / 2;
-- case: numeric_scale
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_numeric_computations201.html
select pricepaid * 2, commission / 3 from sales order by salesid limit 2;
-- case: checksum_md5_column
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_MD5.html
select md5(venuename) from venue order by venueid limit 1;
