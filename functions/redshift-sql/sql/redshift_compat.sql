-- Redshift functions and system views for the local emulator's PostgreSQL (issue 23).
--
-- Installed by the emulator into the schema `redshift_compat`, which every emulator session puts
-- after "$user", public in its search_path (redshift_sql::compat::SEARCH_PATH); pg_catalog stays
-- implicitly first, so a table named like a type (TICKIT's DATE) never hides the type. Where a
-- function here must win over PostgreSQL's own of the same signature (AVG of an integer is an
-- integer; DATE_PART's abbreviations; REGEXP_REPLACE replaces every match) the translation
-- calls it qualified (translate.rs, dialect.rs: COMPAT_QUALIFIED).
--
-- Every object cites the page of the Amazon Redshift Database Developer Guide that defines it
-- (https://docs.aws.amazon.com/redshift/latest/dg/<page>). The file is idempotent (CREATE OR
-- REPLACE) and is run under an advisory lock; its hash is recorded as the schema's comment.
-- Token-level rewrites (bare dateparts, DECODE, NVL, LISTAGG, TOP, ...) are in src/translate.rs.

CREATE SCHEMA IF NOT EXISTS redshift_compat;
SET LOCAL search_path = redshift_compat, pg_catalog;

-- Date parts: r_Dateparts_for_datetime_functions.html ("Date parts for date or timestamp
-- functions": every abbreviation Redshift accepts, mapped to PostgreSQL's field name).
CREATE OR REPLACE FUNCTION redshift_compat.rs_datepart(part text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$
SELECT CASE lower(btrim(part))
    WHEN 'millennium' THEN 'millennium' WHEN 'millennia' THEN 'millennium' WHEN 'mil' THEN 'millennium' WHEN 'mils' THEN 'millennium'
    WHEN 'century' THEN 'century' WHEN 'centuries' THEN 'century' WHEN 'c' THEN 'century' WHEN 'cent' THEN 'century' WHEN 'cents' THEN 'century'
    WHEN 'decade' THEN 'decade' WHEN 'decades' THEN 'decade' WHEN 'dec' THEN 'decade' WHEN 'decs' THEN 'decade'
    WHEN 'epoch' THEN 'epoch'
    WHEN 'year' THEN 'year' WHEN 'years' THEN 'year' WHEN 'y' THEN 'year' WHEN 'yr' THEN 'year' WHEN 'yrs' THEN 'year' WHEN 'yy' THEN 'year' WHEN 'yyyy' THEN 'year'
    WHEN 'quarter' THEN 'quarter' WHEN 'quarters' THEN 'quarter' WHEN 'qtr' THEN 'quarter' WHEN 'qtrs' THEN 'quarter'
    WHEN 'month' THEN 'month' WHEN 'months' THEN 'month' WHEN 'mon' THEN 'month' WHEN 'mons' THEN 'month'
    WHEN 'week' THEN 'week' WHEN 'weeks' THEN 'week' WHEN 'w' THEN 'week'
    WHEN 'day of week' THEN 'dow' WHEN 'dayofweek' THEN 'dow' WHEN 'dow' THEN 'dow' WHEN 'dw' THEN 'dow' WHEN 'weekday' THEN 'dow'
    WHEN 'day of year' THEN 'doy' WHEN 'dayofyear' THEN 'doy' WHEN 'doy' THEN 'doy' WHEN 'dy' THEN 'doy' WHEN 'yearday' THEN 'doy'
    WHEN 'day' THEN 'day' WHEN 'days' THEN 'day' WHEN 'd' THEN 'day'
    WHEN 'hour' THEN 'hour' WHEN 'hours' THEN 'hour' WHEN 'h' THEN 'hour' WHEN 'hr' THEN 'hour' WHEN 'hrs' THEN 'hour'
    WHEN 'minute' THEN 'minute' WHEN 'minutes' THEN 'minute' WHEN 'm' THEN 'minute' WHEN 'min' THEN 'minute' WHEN 'mins' THEN 'minute'
    WHEN 'second' THEN 'second' WHEN 'seconds' THEN 'second' WHEN 's' THEN 'second' WHEN 'sec' THEN 'second' WHEN 'secs' THEN 'second'
    WHEN 'millisecond' THEN 'milliseconds' WHEN 'milliseconds' THEN 'milliseconds' WHEN 'ms' THEN 'milliseconds' WHEN 'msec' THEN 'milliseconds' WHEN 'msecs' THEN 'milliseconds' WHEN 'msecond' THEN 'milliseconds' WHEN 'mseconds' THEN 'milliseconds' WHEN 'millisec' THEN 'milliseconds' WHEN 'millisecs' THEN 'milliseconds' WHEN 'millisecon' THEN 'milliseconds'
    WHEN 'microsecond' THEN 'microseconds' WHEN 'microseconds' THEN 'microseconds' WHEN 'microsec' THEN 'microseconds' WHEN 'microsecs' THEN 'microseconds' WHEN 'microsecond' THEN 'microseconds' WHEN 'usecond' THEN 'microseconds' WHEN 'useconds' THEN 'microseconds' WHEN 'us' THEN 'microseconds' WHEN 'usec' THEN 'microseconds' WHEN 'usecs' THEN 'microseconds'
    WHEN 'timezone' THEN 'timezone' WHEN 'timezone_hour' THEN 'timezone_hour' WHEN 'timezone_minute' THEN 'timezone_minute'
    ELSE lower(btrim(part))
END
$f$;

-- An unknown date part is an error, as on Redshift (r_Dateparts_for_datetime_functions.html).
CREATE OR REPLACE FUNCTION redshift_compat.rs_invalid_datepart(part text, fn text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $f$
BEGIN
    RAISE EXCEPTION '% is not a valid date part for %', part, fn USING ERRCODE = '22023';
END
$f$;

-- DATEADD: r_DATEADD_function.html. Returns TIMESTAMP (TIME/TIMETZ for those inputs).
CREATE OR REPLACE FUNCTION redshift_compat.dateadd(part text, n bigint, ts timestamp) RETURNS timestamp
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$
SELECT CASE redshift_compat.rs_datepart(part)
    WHEN 'millennium' THEN ts + make_interval(years => (n * 1000)::int)
    WHEN 'century' THEN ts + make_interval(years => (n * 100)::int)
    WHEN 'decade' THEN ts + make_interval(years => (n * 10)::int)
    WHEN 'year' THEN ts + make_interval(years => n::int)
    WHEN 'quarter' THEN ts + make_interval(months => (n * 3)::int)
    WHEN 'month' THEN ts + make_interval(months => n::int)
    WHEN 'week' THEN ts + make_interval(weeks => n::int)
    WHEN 'day' THEN ts + make_interval(days => n::int)
    WHEN 'dow' THEN ts + make_interval(days => n::int)
    WHEN 'doy' THEN ts + make_interval(days => n::int)
    WHEN 'hour' THEN ts + n * interval '1 hour'
    WHEN 'minute' THEN ts + n * interval '1 minute'
    WHEN 'second' THEN ts + n * interval '1 second'
    WHEN 'milliseconds' THEN ts + n * interval '1 millisecond'
    WHEN 'microseconds' THEN ts + n * interval '1 microsecond'
    ELSE redshift_compat.rs_invalid_datepart(part, 'dateadd')::timestamp
END
$f$;
CREATE OR REPLACE FUNCTION redshift_compat.dateadd(part text, n bigint, t time) RETURNS time
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$
SELECT (redshift_compat.dateadd(part, n, date '2000-01-01' + t))::time
$f$;
-- A literal argument ('2008-02-28') resolves to TIMESTAMPTZ, PostgreSQL's preferred date/time
-- type: this overload returns the UTC TIMESTAMP Redshift returns for a literal.
CREATE OR REPLACE FUNCTION redshift_compat.dateadd(part text, n bigint, ts timestamptz) RETURNS timestamp
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $f$
SELECT redshift_compat.dateadd(part, n, ts AT TIME ZONE 'UTC')
$f$;
CREATE OR REPLACE FUNCTION redshift_compat.date_add(part text, n bigint, ts timestamp) RETURNS timestamp
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT redshift_compat.dateadd(part, n, ts) $f$;

-- DATEDIFF: r_DATEDIFF_function.html. The number of date part boundaries crossed between the
-- two values (BIGINT): datediff(year, '2009-12-31', '2010-01-01') is 1; weeks start on Monday.
CREATE OR REPLACE FUNCTION redshift_compat.datediff(part text, a timestamp, b timestamp) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$
SELECT CASE redshift_compat.rs_datepart(part)
    WHEN 'millennium' THEN (floor((extract(year FROM b) - 1) / 1000) - floor((extract(year FROM a) - 1) / 1000))::bigint
    WHEN 'century' THEN (floor((extract(year FROM b) - 1) / 100) - floor((extract(year FROM a) - 1) / 100))::bigint
    WHEN 'decade' THEN (floor(extract(year FROM b) / 10) - floor(extract(year FROM a) / 10))::bigint
    WHEN 'year' THEN (extract(year FROM b) - extract(year FROM a))::bigint
    WHEN 'quarter' THEN ((extract(year FROM b) * 4 + extract(quarter FROM b)) - (extract(year FROM a) * 4 + extract(quarter FROM a)))::bigint
    WHEN 'month' THEN ((extract(year FROM b) * 12 + extract(month FROM b)) - (extract(year FROM a) * 12 + extract(month FROM a)))::bigint
    WHEN 'week' THEN ((date_trunc('week', b)::date - date_trunc('week', a)::date) / 7)::bigint
    WHEN 'day' THEN (b::date - a::date)::bigint
    WHEN 'dow' THEN (b::date - a::date)::bigint
    WHEN 'doy' THEN (b::date - a::date)::bigint
    WHEN 'hour' THEN ((extract(epoch FROM date_trunc('hour', b)) - extract(epoch FROM date_trunc('hour', a))) / 3600)::bigint
    WHEN 'minute' THEN ((extract(epoch FROM date_trunc('minute', b)) - extract(epoch FROM date_trunc('minute', a))) / 60)::bigint
    WHEN 'second' THEN (extract(epoch FROM date_trunc('second', b)) - extract(epoch FROM date_trunc('second', a)))::bigint
    WHEN 'milliseconds' THEN ((extract(epoch FROM date_trunc('milliseconds', b)) - extract(epoch FROM date_trunc('milliseconds', a))) * 1000)::bigint
    WHEN 'microseconds' THEN ((extract(epoch FROM b) - extract(epoch FROM a)) * 1000000)::bigint
    ELSE redshift_compat.rs_invalid_datepart(part, 'datediff')::bigint
END
$f$;
CREATE OR REPLACE FUNCTION redshift_compat.datediff(part text, a time, b time) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$
SELECT redshift_compat.datediff(part, date '2000-01-01' + a, date '2000-01-01' + b)
$f$;
CREATE OR REPLACE FUNCTION redshift_compat.datediff(part text, a timestamptz, b timestamptz) RETURNS bigint
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $f$
SELECT redshift_compat.datediff(part, a AT TIME ZONE 'UTC', b AT TIME ZONE 'UTC')
$f$;
CREATE OR REPLACE FUNCTION redshift_compat.date_diff(part text, a timestamp, b timestamp) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT redshift_compat.datediff(part, a, b) $f$;

-- DATE_PART / PGDATE_PART: r_DATE_PART_function.html (DOUBLE PRECISION; Redshift's
-- abbreviations, e.g. 'w', 'dw', 'qtr', 'mon').
CREATE OR REPLACE FUNCTION redshift_compat.date_part(part text, ts timestamp) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$
SELECT pg_catalog.date_part(redshift_compat.rs_datepart(part), ts)
$f$;
CREATE OR REPLACE FUNCTION redshift_compat.date_part(part text, ts timestamptz) RETURNS double precision
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $f$
SELECT pg_catalog.date_part(redshift_compat.rs_datepart(part), ts)
$f$;
CREATE OR REPLACE FUNCTION redshift_compat.date_part(part text, t time) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$
SELECT pg_catalog.date_part(redshift_compat.rs_datepart(part), t)
$f$;
CREATE OR REPLACE FUNCTION redshift_compat.date_part(part text, i interval) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$
SELECT pg_catalog.date_part(redshift_compat.rs_datepart(part), i)
$f$;
CREATE OR REPLACE FUNCTION redshift_compat.pgdate_part(part text, ts timestamp) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT redshift_compat.date_part(part, ts) $f$;
-- DATE_PART_YEAR: r_DATE_PART_YEAR.html (INTEGER).
CREATE OR REPLACE FUNCTION redshift_compat.date_part_year(d date) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT extract(year FROM d)::integer $f$;
-- DATE_TRUNC with Redshift's abbreviations: r_DATE_TRUNC.html.
CREATE OR REPLACE FUNCTION redshift_compat.date_trunc(part text, ts timestamp) RETURNS timestamp
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$
SELECT pg_catalog.date_trunc(redshift_compat.rs_datepart(part), ts)
$f$;
CREATE OR REPLACE FUNCTION redshift_compat.date_trunc(part text, ts timestamptz) RETURNS timestamp
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $f$
SELECT pg_catalog.date_trunc(redshift_compat.rs_datepart(part), ts AT TIME ZONE 'UTC')
$f$;

-- TRUNC(timestamp) returns a DATE: r_TRUNC_date.html.
CREATE OR REPLACE FUNCTION redshift_compat.trunc(ts timestamp) RETURNS date
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT ts::date $f$;
CREATE OR REPLACE FUNCTION redshift_compat.trunc(ts timestamptz) RETURNS date
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $f$ SELECT (ts AT TIME ZONE 'UTC')::date $f$;

-- ADD_MONTHS: r_ADD_MONTHS.html. TIMESTAMP; the last day of a month stays the last day.
CREATE OR REPLACE FUNCTION redshift_compat.add_months(ts timestamp, n bigint) RETURNS timestamp
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$
SELECT CASE
    WHEN ts::date = (date_trunc('month', ts) + interval '1 month' - interval '1 day')::date
    THEN (date_trunc('month', ts) + make_interval(months => n::int + 1) - interval '1 day')::date + ts::time
    ELSE ts + make_interval(months => n::int)
END
$f$;
CREATE OR REPLACE FUNCTION redshift_compat.add_months(ts timestamptz, n bigint) RETURNS timestamp
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $f$
SELECT redshift_compat.add_months(ts AT TIME ZONE 'UTC', n)
$f$;

-- LAST_DAY: r_LAST_DAY.html (DATE).
CREATE OR REPLACE FUNCTION redshift_compat.last_day(ts timestamp) RETURNS date
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$
SELECT (date_trunc('month', ts) + interval '1 month' - interval '1 day')::date
$f$;

-- MONTHS_BETWEEN: r_MONTHS_BETWEEN_function.html (FLOAT8). Whole months when both dates have
-- the same day of the month or are both the last day of their month; otherwise the fraction is
-- based on a 31-day month.
CREATE OR REPLACE FUNCTION redshift_compat.months_between(a date, b date) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$
SELECT CASE
    WHEN extract(day FROM a) = extract(day FROM b)
      OR (a = redshift_compat.last_day(a) AND b = redshift_compat.last_day(b))
    THEN ((extract(year FROM a) - extract(year FROM b)) * 12 + extract(month FROM a) - extract(month FROM b))::double precision
    ELSE ((extract(year FROM a) - extract(year FROM b)) * 12 + extract(month FROM a) - extract(month FROM b)
          + (extract(day FROM a) - extract(day FROM b)) / 31.0)::double precision
END
$f$;

-- NEXT_DAY: r_NEXT_DAY.html (DATE). The day name may be abbreviated ('Tu', 'Tues', ...).
CREATE OR REPLACE FUNCTION redshift_compat.next_day(d timestamp, day_name text) RETURNS date
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $f$
DECLARE
    names text[] := ARRAY['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];
    wanted int;
    want text := lower(btrim(day_name));
BEGIN
    FOR i IN 1..7 LOOP
        IF length(want) >= 2 AND starts_with(names[i], want) THEN
            wanted := i - 1;
        END IF;
    END LOOP;
    IF wanted IS NULL THEN
        RAISE EXCEPTION 'Invalid day name: %', day_name USING ERRCODE = '22023';
    END IF;
    RETURN d::date + ((wanted - extract(dow FROM d)::int + 6) % 7) + 1;
END
$f$;

-- CONVERT_TIMEZONE: r_CONVERT_TIMEZONE.html. Two arguments: from UTC.
CREATE OR REPLACE FUNCTION redshift_compat.convert_timezone(source_tz text, target_tz text, ts timestamp) RETURNS timestamp
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $f$
SELECT (ts AT TIME ZONE source_tz) AT TIME ZONE target_tz
$f$;
CREATE OR REPLACE FUNCTION redshift_compat.convert_timezone(target_tz text, ts timestamp) RETURNS timestamp
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $f$
SELECT (ts AT TIME ZONE 'UTC') AT TIME ZONE target_tz
$f$;

-- DATE_CMP, DATE_CMP_TIMESTAMP, TIMESTAMP_CMP, INTERVAL_CMP: r_DATE_CMP.html,
-- r_DATE_CMP_TIMESTAMP.html, r_TIMESTAMP_CMP.html, r_INTERVAL_CMP.html (INTEGER -1, 0, 1).
CREATE OR REPLACE FUNCTION redshift_compat.date_cmp(a date, b date) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT sign(a - b)::integer $f$;
CREATE OR REPLACE FUNCTION redshift_compat.date_cmp_timestamp(a date, b timestamp) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT CASE WHEN a < b THEN -1 WHEN a > b THEN 1 ELSE 0 END $f$;
CREATE OR REPLACE FUNCTION redshift_compat.timestamp_cmp(a timestamp, b timestamp) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT CASE WHEN a < b THEN -1 WHEN a > b THEN 1 ELSE 0 END $f$;
CREATE OR REPLACE FUNCTION redshift_compat.timestamp_cmp_date(a timestamp, b date) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT CASE WHEN a < b THEN -1 WHEN a > b THEN 1 ELSE 0 END $f$;
CREATE OR REPLACE FUNCTION redshift_compat.interval_cmp(a interval, b interval) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT CASE WHEN a < b THEN -1 WHEN a > b THEN 1 ELSE 0 END $f$;

-- NVL2: r_NVL2.html.
CREATE OR REPLACE FUNCTION redshift_compat.nvl2(e anyelement, not_null anycompatible, if_null anycompatible) RETURNS anycompatible
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$ SELECT CASE WHEN e IS NOT NULL THEN not_null ELSE if_null END $f$;

-- LEN / TEXTLEN: r_LEN.html (INTEGER; trailing blanks of CHAR are not counted, of VARCHAR are).
CREATE OR REPLACE FUNCTION redshift_compat.len(s text) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT pg_catalog.length(s) $f$;
CREATE OR REPLACE FUNCTION redshift_compat.textlen(s text) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT pg_catalog.length(s) $f$;
-- CHARINDEX: r_CHARINDEX.html (position of the first occurrence, 0 when absent).
CREATE OR REPLACE FUNCTION redshift_compat.charindex(needle text, haystack text) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT pg_catalog.strpos(haystack, needle) $f$;

-- STRTOL: r_STRTOL.html (BIGINT; base 2..36; an optional 0x prefix in base 16).
CREATE OR REPLACE FUNCTION redshift_compat.strtol(num_string text, base integer) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $f$
DECLARE
    s text := lower(btrim(num_string));
    negative boolean := false;
    result numeric := 0;
    digit int;
    c text;
BEGIN
    IF base < 2 OR base > 36 THEN
        RAISE EXCEPTION 'strtol: base % is out of range (2 to 36)', base USING ERRCODE = '22023';
    END IF;
    IF left(s, 1) IN ('-', '+') THEN
        negative := left(s, 1) = '-';
        s := substr(s, 2);
    END IF;
    IF base = 16 AND left(s, 2) = '0x' THEN
        s := substr(s, 3);
    END IF;
    IF s = '' THEN
        RAISE EXCEPTION 'strtol: invalid input: "%"', num_string USING ERRCODE = '22P02';
    END IF;
    FOREACH c IN ARRAY regexp_split_to_array(s, '') LOOP
        digit := strpos('0123456789abcdefghijklmnopqrstuvwxyz', c) - 1;
        IF digit < 0 OR digit >= base THEN
            RAISE EXCEPTION 'strtol: invalid digit "%" for base %', c, base USING ERRCODE = '22P02';
        END IF;
        result := result * base + digit;
    END LOOP;
    IF negative THEN
        result := -result;
    END IF;
    RETURN result::bigint;
END
$f$;

-- FNV_HASH: r_FNV_HASH.html (64-bit FNV-1A, BIGINT; an optional seed, the previous hash, for
-- hashing several columns). Text is hashed as its UTF-8 bytes.
CREATE OR REPLACE FUNCTION redshift_compat.rs_fnv1a(bytes bytea, seed bigint) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $f$
DECLARE
    h numeric := CASE WHEN seed < 0 THEN seed::numeric + 18446744073709551616 ELSE seed::numeric END;
BEGIN
    FOR i IN 0..length(bytes) - 1 LOOP
        -- XOR the byte into the low 8 bits, then multiply by the FNV prime modulo 2^64.
        h := h - mod(h, 256) + ((mod(h, 256)::int) # get_byte(bytes, i));
        h := mod(h * 1099511628211, 18446744073709551616);
    END LOOP;
    IF h >= 9223372036854775808 THEN h := h - 18446744073709551616; END IF;
    RETURN h::bigint;
END
$f$;
CREATE OR REPLACE FUNCTION redshift_compat.fnv_hash(v text, seed bigint DEFAULT -3750763034362895579) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT redshift_compat.rs_fnv1a(convert_to(v, 'UTF8'), seed) $f$;
-- Integers are hashed as their little-endian binary representation: 2 bytes for SMALLINT, 4 for
-- INTEGER, 8 for BIGINT.
CREATE OR REPLACE FUNCTION redshift_compat.rs_le_bytes(v bigint, n integer) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$
SELECT string_agg(set_byte('\x00'::bytea, 0, ((v >> (8 * i)) & 255)::int), ''::bytea ORDER BY i)
FROM generate_series(0, n - 1) AS i
$f$;
CREATE OR REPLACE FUNCTION redshift_compat.fnv_hash(v bigint, seed bigint DEFAULT -3750763034362895579) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT redshift_compat.rs_fnv1a(redshift_compat.rs_le_bytes(v, 8), seed) $f$;
CREATE OR REPLACE FUNCTION redshift_compat.fnv_hash(v integer, seed bigint DEFAULT -3750763034362895579) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT redshift_compat.rs_fnv1a(redshift_compat.rs_le_bytes(v, 4), seed) $f$;
CREATE OR REPLACE FUNCTION redshift_compat.fnv_hash(v smallint, seed bigint DEFAULT -3750763034362895579) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT redshift_compat.rs_fnv1a(redshift_compat.rs_le_bytes(v, 2), seed) $f$;

-- SHA2 / FUNC_SHA1 / SHA1 / CRC32 / MD5 are on r_SHA2.html, r_SHA1.html, r_CRC32.html.
CREATE OR REPLACE FUNCTION redshift_compat.sha2(s text, bits integer) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $f$
BEGIN
    RETURN encode(CASE bits
        WHEN 0 THEN sha256(convert_to(s, 'UTF8'))
        WHEN 224 THEN sha224(convert_to(s, 'UTF8'))
        WHEN 256 THEN sha256(convert_to(s, 'UTF8'))
        WHEN 384 THEN sha384(convert_to(s, 'UTF8'))
        WHEN 512 THEN sha512(convert_to(s, 'UTF8'))
    END, 'hex');
END
$f$;
-- CRC32: crc32-function.html ("based on the CRC-32C polynomial": Castagnoli, reflected
-- 0x82F63B78; lowercase hex, 8 digits).
CREATE OR REPLACE FUNCTION redshift_compat.crc32(s text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $f$
DECLARE
    bytes bytea := convert_to(s, 'UTF8');
    crc bigint := 4294967295;
BEGIN
    FOR i IN 0..length(bytes) - 1 LOOP
        crc := crc # get_byte(bytes, i);
        FOR j IN 1..8 LOOP
            IF (crc & 1) = 1 THEN
                crc := (crc >> 1) # 2197175160;
            ELSE
                crc := crc >> 1;
            END IF;
        END LOOP;
    END LOOP;
    RETURN lpad(to_hex(crc # 4294967295), 8, '0');
END
$f$;

-- REPLICATE: r_REPLICATE.html (REPEAT's synonym). SPACE is not a Redshift function.
CREATE OR REPLACE FUNCTION redshift_compat.replicate(s text, n integer) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT repeat(s, n) $f$;

-- Math: DEXP (r_DEXP.html), DLOG1 (r_DLOG1.html), DLOG10 (r_DLOG10.html).
CREATE OR REPLACE FUNCTION redshift_compat.dexp(x double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT exp(x) $f$;
CREATE OR REPLACE FUNCTION redshift_compat.dlog1(x double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT ln(x) $f$;
CREATE OR REPLACE FUNCTION redshift_compat.dlog10(x double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT log(x) $f$;

-- JSON functions on VARCHAR: r_JSON_EXTRACT_PATH_TEXT.html, r_JSON_ARRAY_LENGTH.html,
-- r_JSON_EXTRACT_ARRAY_ELEMENT_TEXT.html, r_IS_VALID_JSON.html, r_IS_VALID_JSON_ARRAY.html.
-- A missing path or element is an empty string.
CREATE OR REPLACE FUNCTION redshift_compat.json_extract_path_text(j text, VARIADIC path text[]) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT coalesce(j::json #>> path, '') $f$;
CREATE OR REPLACE FUNCTION redshift_compat.json_array_length(j text) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT pg_catalog.json_array_length(j::json) $f$;
CREATE OR REPLACE FUNCTION redshift_compat.json_extract_array_element_text(j text, pos integer) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT coalesce(j::json ->> pos, '') $f$;
CREATE OR REPLACE FUNCTION redshift_compat.is_valid_json(j text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $f$
BEGIN
    RETURN pg_catalog.json_typeof(j::json) = 'object';
EXCEPTION WHEN others THEN
    RETURN false;
END
$f$;
CREATE OR REPLACE FUNCTION redshift_compat.is_valid_json_array(j text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $f$
BEGIN
    RETURN pg_catalog.json_typeof(j::json) = 'array';
EXCEPTION WHEN others THEN
    RETURN false;
END
$f$;

-- SUPER is emulated as jsonb (translate.rs renames the type). JSON_PARSE (r_JSON_PARSE.html),
-- JSON_SERIALIZE (r_JSON_SERIALIZE.html, compact text), IS_ARRAY / IS_OBJECT / IS_SCALAR /
-- IS_BOOLEAN / IS_NUMBER / IS_VARCHAR (r_is_array.html, ...), JSON_TYPEOF (r_json_typeof.html),
-- GET_ARRAY_LENGTH (get_array_length.html).
CREATE OR REPLACE FUNCTION redshift_compat.json_parse(j text) RETURNS jsonb
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT j::jsonb $f$;
CREATE OR REPLACE FUNCTION redshift_compat.json_serialize(j jsonb) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$
SELECT CASE jsonb_typeof(j)
    WHEN 'object' THEN '{' || coalesce((SELECT string_agg(to_json(key)::text || ':' || redshift_compat.json_serialize(value), ',')
                                        FROM jsonb_each(j)), '') || '}'
    WHEN 'array' THEN '[' || coalesce((SELECT string_agg(redshift_compat.json_serialize(value), ',' ORDER BY n)
                                       FROM jsonb_array_elements(j) WITH ORDINALITY AS e(value, n)), '') || ']'
    ELSE j::text
END
$f$;
CREATE OR REPLACE FUNCTION redshift_compat.is_array(j jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT jsonb_typeof(j) = 'array' $f$;
CREATE OR REPLACE FUNCTION redshift_compat.is_object(j jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT jsonb_typeof(j) = 'object' $f$;
CREATE OR REPLACE FUNCTION redshift_compat.is_scalar(j jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT jsonb_typeof(j) NOT IN ('array', 'object') $f$;
CREATE OR REPLACE FUNCTION redshift_compat.is_boolean(j jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT jsonb_typeof(j) = 'boolean' $f$;
CREATE OR REPLACE FUNCTION redshift_compat.is_number(j jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT jsonb_typeof(j) = 'number' $f$;
CREATE OR REPLACE FUNCTION redshift_compat.is_varchar(j jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT jsonb_typeof(j) = 'string' $f$;
CREATE OR REPLACE FUNCTION redshift_compat.json_typeof(j jsonb) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT jsonb_typeof(j) $f$;
CREATE OR REPLACE FUNCTION redshift_compat.get_array_length(j jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT CASE WHEN jsonb_typeof(j) = 'array' THEN jsonb_array_length(j) END $f$;

-- AVG of SMALLINT, INTEGER or BIGINT is a BIGINT (the fraction truncated): r_AVG.html.
CREATE OR REPLACE FUNCTION redshift_compat.rs_int_avg_final(state bigint[]) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$
SELECT CASE WHEN state[1] = 0 THEN NULL ELSE trunc(state[2]::numeric / state[1])::bigint END
$f$;
CREATE OR REPLACE AGGREGATE redshift_compat.avg(smallint) (
    SFUNC = int2_avg_accum, STYPE = bigint[], FINALFUNC = redshift_compat.rs_int_avg_final,
    COMBINEFUNC = int4_avg_combine, INITCOND = '{0,0}', PARALLEL = SAFE
);
CREATE OR REPLACE AGGREGATE redshift_compat.avg(integer) (
    SFUNC = int4_avg_accum, STYPE = bigint[], FINALFUNC = redshift_compat.rs_int_avg_final,
    COMBINEFUNC = int4_avg_combine, INITCOND = '{0,0}', PARALLEL = SAFE
);
CREATE OR REPLACE FUNCTION redshift_compat.rs_int8_avg_final(state numeric[]) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$
SELECT CASE WHEN state[1] = 0 THEN NULL ELSE trunc(state[2] / state[1])::bigint END
$f$;
CREATE OR REPLACE FUNCTION redshift_compat.rs_int8_avg_accum(state numeric[], v bigint) RETURNS numeric[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$
SELECT CASE WHEN v IS NULL THEN state ELSE ARRAY[state[1] + 1, state[2] + v] END
$f$;
CREATE OR REPLACE AGGREGATE redshift_compat.avg(bigint) (
    SFUNC = redshift_compat.rs_int8_avg_accum, STYPE = numeric[],
    FINALFUNC = redshift_compat.rs_int8_avg_final, INITCOND = '{0,0}'
);

-- System views a local database can answer truthfully: SVV_TABLES (r_SVV_TABLES.html),
-- SVV_COLUMNS (r_SVV_COLUMNS.html), PG_TABLE_DEF (r_PG_TABLE_DEF.html: only the schemas in the
-- search path; encoding, distkey and sortkey are not kept locally, so they read 'none'/false/0),
-- SVV_ALL_SCHEMAS-like SVV_REDSHIFT_SCHEMAS is not provided. Other STL_/STV_/SVL_/SVV_/SYS_
-- views are refused by name by the translation (translate.rs, SYSTEM_VIEWS).
CREATE OR REPLACE VIEW redshift_compat.svv_tables AS
SELECT table_catalog::varchar(128) AS table_catalog, table_schema::varchar(128) AS table_schema,
       table_name::varchar(128) AS table_name, table_type::varchar(128) AS table_type,
       NULL::varchar(128) AS remarks
FROM information_schema.tables
WHERE table_schema NOT IN ('pg_catalog', 'information_schema', 'redshift_compat');
CREATE OR REPLACE VIEW redshift_compat.svv_columns AS
SELECT table_catalog::varchar(128) AS table_catalog, table_schema::varchar(128) AS table_schema,
       table_name::varchar(128) AS table_name, column_name::varchar(128) AS column_name,
       ordinal_position::int AS ordinal_position, column_default::varchar(4000) AS column_default,
       is_nullable::varchar(3) AS is_nullable, data_type::varchar(128) AS data_type,
       character_maximum_length::int AS character_maximum_length,
       numeric_precision::int AS numeric_precision, numeric_scale::int AS numeric_scale,
       NULL::varchar(128) AS remarks
FROM information_schema.columns
WHERE table_schema NOT IN ('pg_catalog', 'information_schema', 'redshift_compat');
CREATE OR REPLACE VIEW redshift_compat.pg_table_def AS
SELECT n.nspname AS schemaname, c.relname AS tablename, a.attname AS "column",
       pg_catalog.format_type(a.atttypid, a.atttypmod) AS type, 'none'::name AS encoding,
       false AS distkey, 0 AS sortkey, a.attnotnull AS notnull
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p', 'v', 'm') AND n.nspname = ANY (current_schemas(false))
  AND n.nspname <> 'redshift_compat';

-- PG_GET_LATE_BINDING_VIEW_COLS: r_PG_GET_LATE_BINDING_VIEW_COLS.html. Locally every view is
-- bound to its tables (WITH NO SCHEMA BINDING is dropped by the translation), so there are no
-- late-binding views to list.
CREATE OR REPLACE FUNCTION redshift_compat.pg_get_late_binding_view_cols() RETURNS SETOF record
LANGUAGE sql STABLE AS $f$ SELECT NULL::name, NULL::name, NULL::name, NULL::varchar, NULL::int WHERE false $f$;

-- REGEXP_REPLACE: REGEXP_REPLACE.html. The replacement defaults to '' and EVERY match is
-- replaced (PostgreSQL replaces the first unless flagged 'g'); position counts from 1.
CREATE OR REPLACE FUNCTION redshift_compat.regexp_replace(s text, pattern text, replacement text DEFAULT '', pos integer DEFAULT 1) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$
SELECT left(s, pos - 1) || pg_catalog.regexp_replace(substr(s, pos), pattern, replacement, 'g')
$f$;

-- ANY_VALUE: r_ANY_VALUE.html (any value of the group; the first one seen here).
CREATE OR REPLACE FUNCTION redshift_compat.rs_any_value_step(state anyelement, v anyelement) RETURNS anyelement
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$ SELECT coalesce(state, v) $f$;
CREATE OR REPLACE AGGREGATE redshift_compat.any_value(anyelement) (
    SFUNC = redshift_compat.rs_any_value_step, STYPE = anyelement
);

-- AVG of NUMERIC, REAL, DOUBLE PRECISION and INTERVAL as PostgreSQL computes it, so that the
-- translation can call redshift_compat.avg for every argument type (r_AVG.html).
CREATE OR REPLACE AGGREGATE redshift_compat.avg(numeric) (
    SFUNC = numeric_avg_accum, STYPE = internal, FINALFUNC = numeric_avg,
    COMBINEFUNC = numeric_avg_combine, SERIALFUNC = numeric_avg_serialize,
    DESERIALFUNC = numeric_avg_deserialize, PARALLEL = SAFE
);
CREATE OR REPLACE AGGREGATE redshift_compat.avg(real) (
    SFUNC = float4_accum, STYPE = double precision[], FINALFUNC = float8_avg,
    COMBINEFUNC = float8_combine, INITCOND = '{0,0,0}', PARALLEL = SAFE
);
CREATE OR REPLACE AGGREGATE redshift_compat.avg(double precision) (
    SFUNC = float8_accum, STYPE = double precision[], FINALFUNC = float8_avg,
    COMBINEFUNC = float8_combine, INITCOND = '{0,0,0}', PARALLEL = SAFE
);
