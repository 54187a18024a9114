-- Backslash escapes in string literals, and the Guide's regular expressions written with them.
-- case: regexp_substr_escaped_dot
-- source: https://docs.aws.amazon.com/redshift/latest/dg/REGEXP_SUBSTR.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: .edu
select regexp_substr('Etiam.laoreet.libero@sodalesMaurisblandit.edu', '\\.[a-z]+$');
-- case: regexp_count
-- source: https://docs.aws.amazon.com/redshift/latest/dg/REGEXP_COUNT.html
-- expect: 8
select regexp_count('abcdefghijklmnopqrstuvwxyz', '[a-z]{3}');
-- case: regexp_instr
-- source: https://docs.aws.amazon.com/redshift/latest/dg/REGEXP_INSTR.html
select email, regexp_instr(email, '@[^.]*') from users order by userid limit 3;
-- case: regexp_replace_domain
-- source: https://docs.aws.amazon.com/redshift/latest/dg/REGEXP_REPLACE.html
select email, regexp_replace(email, '@.*\\.(org|gov|com|edu|ca)$') from users order by userid limit 3;
-- case: regexp_replace_documented
-- source: https://docs.aws.amazon.com/redshift/latest/dg/REGEXP_REPLACE.html
-- note: derived from the page's pattern on the first TICKIT user's e-mail
-- expect: Etiam.laoreet.libero
select regexp_replace('Etiam.laoreet.libero@sodalesMaurisblandit.edu', '@.*\\.(org|gov|com|edu|ca)$');
-- case: regexp_substr_backslash_w
-- source: https://docs.aws.amazon.com/redshift/latest/dg/REGEXP_SUBSTR.html
-- expect:  text
select regexp_substr('Sample text', '\\s\\w+');
-- case: backslash_quote_escape
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_Literals.html
-- note: derived (from the page's definition, not an example output shown on it)
-- note: a backslash escapes the next character in a Redshift string literal
-- expect: it's
select 'it\'s';
-- case: backslash_backslash
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_Literals.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: a\b
select 'a\\b';
-- case: backslash_semicolon_split
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_Literals.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: x';y
select 'x\';y';
-- case: like_escape_default
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_patternmatching_condition_like.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 1
select count(*) from (select 'start_middle' as s) t where s like 'start\\_%';
-- case: similar_to_escape
-- source: https://docs.aws.amazon.com/redshift/latest/dg/pattern-matching-conditions-similar-to.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: t
select 'a.b' similar to 'a\\.b';
