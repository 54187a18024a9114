-- Window functions, QUALIFY.
-- case: row_number
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_WF_ROW_NUMBER.html
select salesid, row_number() over (partition by sellerid order by pricepaid desc) from sales order by 1;
-- case: rank_dense_rank
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_WF_RANK.html
select salesid, rank() over (order by qtysold), dense_rank() over (order by qtysold) from sales order by 1;
-- case: ratio_to_report
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_WF_RATIO_TO_REPORT.html
select sellerid, qtysold, ratio_to_report(qtysold) over (partition by sellerid) from sales order by 1, 2;
-- case: ratio_to_report_literal
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_WF_RATIO_TO_REPORT.html
-- note: derived
-- expect: 0.25
-- expect: 0.75
select ratio_to_report(x) over () from (select 1 as x union all select 3) t order by 1;
-- case: sum_rows_frame
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_WF_SUM.html
select salesid, sum(qtysold) over (order by salesid rows unbounded preceding) as cumulative from sales order by 1;
-- case: avg_over_int
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_WF_AVG.html
select salesid, avg(qtysold) over (order by salesid rows unbounded preceding) from sales order by 1;
-- case: lag_lead
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_WF_LAG.html
select salesid, lag(qtysold, 1) over (order by salesid), lead(qtysold, 1) over (order by salesid) from sales order by 1;
-- case: first_last_value
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_WF_first_value.html
select venuestate, venueseats, first_value(venuename) over (partition by venuestate order by venueseats desc rows between unbounded preceding and unbounded following) from venue order by 1, 2;
-- case: nth_value
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_WF_NTH.html
select venuestate, nth_value(venuename, 2) over (partition by venuestate order by venueseats desc rows between unbounded preceding and unbounded following) from venue order by 1;
-- case: ntile
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_WF_NTILE.html
select eventid, ntile(4) over (order by pricepaid desc) from sales order by 1;
-- case: cume_dist_percent_rank
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_WF_CUME_DIST.html
select salesid, cume_dist() over (order by qtysold), percent_rank() over (order by qtysold) from sales order by 1;
-- case: listagg_over
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_WF_LISTAGG.html
select sellerid, listagg(salesid, ',') within group (order by salesid) over (partition by sellerid) from sales order by 1;
-- case: first_value_ignore_nulls
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_WF_first_value.html
select userid, first_value(likesports ignore nulls) over (order by userid rows between unbounded preceding and unbounded following) from users order by 1;
-- case: qualify_row_number
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_QUALIFY_clause.html
select salesid, sellerid from sales qualify row_number() over (partition by sellerid order by salesid) = 1 order by 1;
-- case: qualify_with_where
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_QUALIFY_clause.html
select eventid, pricepaid from sales where qtysold > 1 qualify rank() over (order by pricepaid desc) <= 3 order by 2 desc;
-- case: qualify_alias
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_QUALIFY_clause.html
select salesid, row_number() over (order by pricepaid desc) as rn from sales qualify rn <= 2 order by rn;
-- case: window_named_in_subquery
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_Window_function_synopsis.html
select * from (select salesid, row_number() over (partition by sellerid order by salesid) as rn from sales) where rn = 1 order by 1;
