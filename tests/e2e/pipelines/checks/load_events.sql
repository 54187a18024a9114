-- LoadEvents: the run date's 100 events (every 10th of kind 'spam'; on 2021-06-27 the first 25
-- amounts negative), and the two declared kinds.
create table if not exists chk_events (id int4, kind varchar(10), amount int4, created_at timestamp);
create table if not exists chk_kinds (kind varchar(10));
delete from chk_kinds;
insert into chk_kinds (kind) values ('click'), ('view');
delete from chk_events;
insert into chk_events (id, kind, amount, created_at)
select n,
       case when n % 10 = 0 then 'spam' when n % 2 = 0 then 'click' else 'view' end,
       case when {{run_date}}::date = '2021-06-27'::date and n <= 25 then -n else n end,
       {{run_date}}::timestamp
from generate_series(1, 100) as g(n);
