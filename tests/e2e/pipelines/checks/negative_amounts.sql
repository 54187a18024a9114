-- NegativeAmounts: every event with a negative amount is a violation.
select id, kind, amount
from chk_events
where amount < 0;
