-- Bare date parts in DATEADD / DATEDIFF / DATE_PART / DATE_TRUNC / EXTRACT.
-- case: dateadd_month_literal
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DATEADD_function.html
-- expect: 2009-08-28 00:00:00
select dateadd(month,18,'2008-02-28');
-- case: dateadd_m_is_minute
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DATEADD_function.html
-- expect: 2008-02-28 00:30:00
select dateadd(m,30,'2008-02-28');
-- case: dateadd_day_caldate
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DATEADD_function.html
select dateadd(day,30,caldate) as novplus30 from date where month='NOV' order by dateid;
-- case: dateadd_month_end_of_month
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DATEADD_usage_notes.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 2008-02-29 00:00:00
select dateadd(month,1,'2008-01-31');
-- case: dateadd_negative_year
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DATEADD_function.html
-- note: derived from the page's definition
-- expect: 2007-02-28 00:00:00
select dateadd(year,-1,'2008-02-28');
-- case: dateadd_quoted_datepart
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DATEADD_function.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 2008-03-01 00:00:00
select dateadd('day', 2, '2008-02-28'::date);
-- case: dateadd_hour_timestamp_column
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DATEADD_function.html
select dateadd(hour, 2, starttime) from event order by eventid limit 3;
-- case: dateadd_week_sysdate
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DATEADD_function.html
select dateadd(week, 1, sysdate) > sysdate;
-- case: dateadd_qtr
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_Dateparts_for_datetime_functions.html
-- note: derived
-- expect: 2008-05-15 00:00:00
select dateadd(qtr, 1, '2008-02-15');
-- case: dateadd_in_where
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DATEADD_function.html
select count(*) from sales where saletime > dateadd(day, -400, '2008-12-31'::date);
-- case: datediff_week
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DATEDIFF_function.html
-- expect: 52
select datediff(week,'2009-01-01','2009-12-31') as numweeks;
-- case: datediff_hours
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DATEDIFF_function.html
-- expect: 53
select datediff(hours, '2023-01-01', '2023-01-03 05:04:03');
-- case: datediff_year_boundary
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DATEDIFF_function.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 1
select datediff(year, '2009-12-31', '2010-01-01');
-- case: datediff_qtr_columns
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DATEDIFF_function.html
select datediff(qtr, listtime, saletime) from sales join listing using (listid) order by salesid limit 3;
-- case: datediff_days_columns
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DATEDIFF_function.html
select listid, datediff(days, listtime, saletime) as diff from sales join listing using (listid) order by 1;
-- case: datediff_month_negative
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DATEDIFF_function.html
-- note: derived
-- expect: -3
select datediff(month, '2008-04-15', '2008-01-31');
-- case: datediff_minute
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DATEDIFF_function.html
-- note: derived
-- expect: 90
select datediff(minute, '2008-01-01 10:00', '2008-01-01 11:30');
-- case: date_part_minute
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DATE_PART_function.html
-- expect: 8
select date_part(minute, timestamp '2009-01-01 02:08:01');
-- case: date_part_w
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DATE_PART_function.html
-- expect: 1
select date_part(w, timestamp '2008-01-05 14:00');
-- case: date_part_dow_column
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DATE_PART_function.html
select date_part(dow, starttime) as dow, starttime from event where date_part(dow, starttime)=6 order by 2,1;
-- case: date_part_quoted_abbrev
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DATE_PART_function.html
-- expect: 1
select date_part('qtr', timestamp '2008-02-05 14:00');
-- case: date_part_epoch
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DATE_PART_function.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 1217566800
select date_part(epoch, timestamp '2008-08-01 05:00:00');
-- case: datepart_group_by
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DATE_PART_function.html
select date_part(month, saletime) as m, sum(pricepaid) from sales group by 1 order by 1;
-- case: pgdate_part
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DATE_PART_function.html
-- expect: 2008
select pgdate_part('year', timestamp '2008-08-01 05:00:00');
-- case: date_part_year_fn
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DATE_PART_YEAR.html
select date_part_year(caldate) from date order by dateid limit 1;
-- case: date_trunc_week
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DATE_TRUNC.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 2008-09-01 00:00:00
select date_trunc('week', timestamp '2008-09-07 10:00:00');
-- case: date_trunc_qtr
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DATE_TRUNC.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 2008-07-01 00:00:00
select date_trunc('qtr', timestamp '2008-09-07 10:00:00');
-- case: extract_week
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_EXTRACT_function.html
select extract(week from saletime) as weeknum, count(*) from sales group by 1 order by 1;
-- case: extract_minute_timestamp
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_EXTRACT_function.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 8
select extract(minute from timestamp '2009-09-09 12:08:43');
-- case: extract_ms_time
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_EXTRACT_function.html
select extract(ms from time '18:25:33.123456');
