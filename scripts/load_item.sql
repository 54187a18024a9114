-- LoadItem: slowly changing dimension type 2 on item, tracking i_current_price.
-- The current version of an item is the row with i_rec_end_date IS NULL.
--   1. same price, other attributes changed: overwrite category/name on the current row in place
--   2. price changed: close the current row (i_rec_end_date = run date)
--   3. every staged id without a current row (closed in step 2, or brand new) gets a new current
--      version: surrogate key max(i_item_sk) + row_number() ordered by i_item_id, start = run date.
-- Closing before inserting means the new versions are never closed by the same run.
-- Idempotent: after a run every staged price equals the current price, so a re-run does nothing.

-- The staging table is TEMPORARY: a Data API batch is one session, so it exists only for this
-- batch and two runs (two stacks on one warehouse, RunConcurrency above 1) never share it.
create temp table stg_item (
    i_item_id        char(16)      not null encode zstd,
    i_rec_start_date date                   encode az64,
    i_rec_end_date   date                   encode az64,
    i_current_price  numeric(7, 2)          encode az64,
    i_category       char(50)               encode zstd,
    i_product_name   char(50)               encode zstd
) diststyle even;

-- ITEM...01 price 10.00 -> 12.50 (new version), ITEM...02 same price but renamed and recategorised
-- (in place), ITEM...03 unchanged, ITEM...04 is new (insert).
insert into stg_item (i_item_id, i_rec_start_date, i_rec_end_date, i_current_price, i_category,
                      i_product_name) values
    ('ITEM000000000001', {{run_date}}::date, null, 12.50, 'Books', 'Rust in Action'),
    ('ITEM000000000002', {{run_date}}::date, null, 25.00, 'Computers', 'USB-C Cable'),
    ('ITEM000000000003', {{run_date}}::date, null, 5.00, 'Kitchen', 'Coffee Mug'),
    ('ITEM000000000004', {{run_date}}::date, null, 7.25, 'Garden', 'Hand Trowel');

-- 1. Same price: type 1 overwrite of the current row.
update {{schema}}.item
set i_category = s.i_category,
    i_product_name = s.i_product_name
from stg_item s
where item.i_item_id = s.i_item_id
  and item.i_rec_end_date is null
  and coalesce(item.i_current_price, -1) = coalesce(s.i_current_price, -1)
  and (coalesce(item.i_category, '') <> coalesce(s.i_category, '')
       or coalesce(item.i_product_name, '') <> coalesce(s.i_product_name, ''));

-- 2. Price changed: close the current row on the run date.
update {{schema}}.item
set i_rec_end_date = {{run_date}}::date
from stg_item s
where item.i_item_id = s.i_item_id
  and item.i_rec_end_date is null
  and coalesce(item.i_current_price, -1) <> coalesce(s.i_current_price, -1);

-- 3. New current versions for changed prices and for brand-new items.
insert into {{schema}}.item (i_item_sk, i_item_id, i_rec_start_date, i_rec_end_date, i_current_price,
                  i_category, i_product_name)
select m.max_sk + row_number() over (order by s.i_item_id),
       s.i_item_id, {{run_date}}::date, cast(null as date), s.i_current_price,
       s.i_category, s.i_product_name
from stg_item s
cross join (select coalesce(max(i_item_sk), 0) as max_sk from {{schema}}.item) m
where not exists (
    select 1 from {{schema}}.item t where t.i_item_id = s.i_item_id and t.i_rec_end_date is null
);
