-- TRUNC / ADD_MONTHS / LAST_DAY / MONTHS_BETWEEN / CONVERT_TIMEZONE and friends.
-- case: trunc_timestamp
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_TRUNC_date.html
-- expect: 2011-07-21
select trunc(timestamp '2011-07-21 10:32:38.248109');
-- case: trunc_sysdate
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_TRUNC_date.html
select trunc(sysdate) = current_date;
-- case: trunc_number
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_TRUNC.html
-- expect: 111
select trunc(111.86);
-- case: trunc_number_scale
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_TRUNC.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 111.8
select trunc(111.86, 1);
-- case: add_months_literal
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_ADD_MONTHS.html
-- expect: 2008-04-30 00:00:00
select add_months('2008-03-31',1);
-- case: add_months_column
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_ADD_MONTHS.html
select add_months(caldate, 12) as months_later from date order by dateid limit 3;
-- case: add_months_negative
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_ADD_MONTHS.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 2008-02-29 00:00:00
select add_months('2008-03-31',-1);
-- case: last_day_literal
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_LAST_DAY.html
-- expect: 2004-01-31
select last_day('2004-01-25');
-- case: last_day_column
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_LAST_DAY.html
select datediff(day, saletime, last_day(saletime)) as days_remaining from sales order by salesid;
-- case: months_between_whole
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_MONTHS_BETWEEN_function.html
-- expect: 2
select months_between('1969-03-18', '1969-01-18');
-- case: months_between_negative
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_MONTHS_BETWEEN_function.html
-- expect: -2
select months_between('1969-01-18', '1969-03-18');
-- case: months_between_columns
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_MONTHS_BETWEEN_function.html
select months_between(saletime::date, listtime::date) from sales join listing using (listid) order by salesid;
-- case: convert_timezone_three_args
-- source: https://docs.aws.amazon.com/redshift/latest/dg/CONVERT_TIMEZONE.html
-- expect: 2008-03-05 09:25:29
select convert_timezone('EST', 'PST', '20080305 12:25:29');
-- case: convert_timezone_two_args
-- source: https://docs.aws.amazon.com/redshift/latest/dg/CONVERT_TIMEZONE.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 2008-03-05 04:25:29
select convert_timezone('US/Pacific', '2008-03-05 12:25:29');
-- case: convert_timezone_column
-- source: https://docs.aws.amazon.com/redshift/latest/dg/CONVERT_TIMEZONE.html
select listtime, convert_timezone('US/Pacific', listtime) from listing where listid = 1;
-- case: next_day_literal
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_NEXT_DAY.html
-- expect: 2014-08-26
select next_day('2014-08-20','Tuesday');
-- case: next_day_abbrev
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_NEXT_DAY.html
select next_day(saletime, 'Tu') from sales order by salesid limit 2;
-- case: getdate_trunc
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_GETDATE.html
select trunc(getdate());
-- case: sysdate_column
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_SYSDATE.html
select sysdate > '2008-01-01'::timestamp;
-- case: date_cmp
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DATE_CMP.html
-- expect: -1
select date_cmp('2008-01-01', '2008-01-04');
-- case: date_cmp_timestamp
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_DATE_CMP_TIMESTAMP.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 0
select date_cmp_timestamp('2008-01-04', '2008-01-04 00:00:00');
-- case: timestamp_cmp
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_TIMESTAMP_CMP.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 1
select timestamp_cmp('2008-01-24 06:43:29', '2008-01-04 06:43:29');
-- case: interval_cmp
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_INTERVAL_CMP.html
-- expect: -1
select interval_cmp('3 days','1 year');
-- case: to_date_format
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_TO_DATE_function.html
-- expect: 2001-10-02
select to_date('02 Oct 2001', 'DD Mon YYYY');
-- case: to_char_timestamp
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_TO_CHAR.html
-- expect: DECEMBER -THU-31-2009 11:15PM
select to_char(timestamp '2009-12-31 23:15:59','MONTH-DY-DD-YYYY HH12:MIPM');
-- case: to_timestamp_format
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_TO_TIMESTAMP.html
select to_timestamp('05 Dec 2000', 'DD Mon YYYY');
-- case: current_date_cast
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_CURRENT_DATE_function.html
select current_date > '2008-01-01';
-- case: timeofday
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_TIMEOFDAY_function.html
select length(timeofday()) > 10;
-- case: date_literal_arithmetic
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_Date_and_time_literals.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 2008-01-02
select date '2008-01-01' + 1;
-- case: interval_literal_week
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_interval_literals.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 2008-01-15 00:00:00
select timestamp '2008-01-01' + interval '2 weeks';
