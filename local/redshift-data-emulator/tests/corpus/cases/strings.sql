-- String functions: LEN / CHARINDEX / STRTOL / FNV_HASH and the rest of the string chapter.
-- case: len_multibyte
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_LEN.html
-- expect: 8
select len('français');
-- case: len_column
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_LEN.html
select len(venuename) from venue order by venueid;
-- case: len_char_trailing
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_LEN.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 3
select len('cat  '::char(5));
-- case: textlen
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_LEN.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 5
select textlen('Hello');
-- case: length
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_LENGTH.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 8
select length('français');
-- case: octet_length
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_OCTET_LENGTH.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 9
select octet_length('français');
-- case: charindex_absent
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_CHARINDEX.html
-- expect: 0
select charindex('dog', 'fish');
-- case: charindex_present
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_CHARINDEX.html
-- expect: 4
select charindex('fish', 'dogfish');
-- case: charindex_column
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_CHARINDEX.html
select distinct charindex('.', commission), count (charindex('.', commission)) from sales where charindex('.', commission) > 4 group by charindex('.', commission) order by 1,2;
-- case: strpos
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_STRPOS.html
-- expect: 4
select strpos('dogfish', 'fish');
-- case: position
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_POSITION.html
-- expect: 4
select position('fish' in 'dogfish');
-- case: strtol_hex
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_STRTOL.html
-- expect: 2882343476
select strtol('abcd1234',16);
-- case: strtol_decimal
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_STRTOL.html
-- expect: 1234567
select strtol('1234567', 10);
-- case: strtol_binary
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_STRTOL.html
-- expect: 53
select strtol('110101', 2);
-- case: strtol_octal
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_STRTOL.html
-- expect: 342391
select strtol('1234567', 8);
-- case: strtol_hex_short
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_STRTOL.html
-- expect: 15
select strtol('0xf',16);
-- case: strtol_hex_prefix
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_STRTOL.html
-- expect: 2882343476
select strtol('0xabcd1234',16);
-- case: fnv_hash_int
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_FNV_HASH.html
-- expect: -5968735742475085980
select fnv_hash(1);
-- case: fnv_hash_text
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_FNV_HASH.html
-- expect: 7783490368944507294
select fnv_hash('Amazon Redshift');
-- case: fnv_hash_seed
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_FNV_HASH.html
-- expect: -2202602717770968555
select fnv_hash('Amazon Redshift', fnv_hash(1));
-- case: fnv_hash_concat
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_FNV_HASH.html
-- expect: -281581062704388899
select fnv_hash('cd', fnv_hash('ab'));
-- case: fnv_hash_smallint
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_FNV_HASH.html
-- expect: 589727492704079044
select fnv_hash(1::smallint);
-- case: fnv_hash_bigint
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_FNV_HASH.html
-- expect: -8517097267634966620
select fnv_hash(1::bigint);
-- case: md5
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_MD5.html
-- expect: f7415e33f972c03abd4f3fed36748f7a
select md5('Amazon Redshift');
-- case: sha2_256
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_SHA2.html
select sha2('Amazon Redshift', 256);
-- case: crc32
-- source: https://docs.aws.amazon.com/redshift/latest/dg/crc32-function.html
-- expect: f2726906
select crc32('Amazon Redshift');
-- case: btrim
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_BTRIM.html
-- expect: axyzbxyzc
select btrim('xyzaxyzbxyzcxyz', 'xyz');
-- case: split_part
-- source: https://docs.aws.amazon.com/redshift/latest/dg/SPLIT_PART.html
-- expect: def
select split_part('abc$def$ghi','$',2);
-- case: split_part_column
-- source: https://docs.aws.amazon.com/redshift/latest/dg/SPLIT_PART.html
select split_part(listtime,'-',2) as month from listing order by listid;
-- case: translate
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_TRANSLATE.html
-- expect: most tin
select translate('mint tea', 'inea', 'osin');
-- case: substring
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_SUBSTRING.html
-- expect: pill
select substring('caterpillar',6,4);
-- case: substring_from_for
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_SUBSTRING.html
-- expect: pill
select substring('caterpillar' from 6 for 4);
-- case: reverse
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_REVERSE.html
-- expect: esrever
select reverse('reverse');
-- case: replicate
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_REPLICATE.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: abcabcabc
select replicate('abc', 3);
-- case: repeat
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_REPEAT.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: abcabcabc
select repeat('abc', 3);
-- case: initcap
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_INITCAP.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: All Non-Musical Theatre
select initcap(catdesc) from category where catid = 7;
-- case: lpad_rpad
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_LPAD.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 0000000001 | 1*********
select lpad('1', 10, '0'), rpad('1', 10, '*');
-- case: left_right
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_LEFT.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: Mus | cal
select left('Musical', 3), right('Musical', 3);
-- case: ascii_chr
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_ASCII.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 97 | A
select ascii('amazon'), chr(65);
-- case: concat_two
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_CONCAT.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: December 25, 2008
select concat('December 25, ', '2008');
-- case: concat_operator
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_concat_op.html
select venuename || ' at ' || venuecity from venue order by venueid;
-- case: quote_ident_literal
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_QUOTE_IDENT.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: "Toronto" | 'Toronto'
select quote_ident('Toronto'), quote_literal('Toronto');
-- case: lower_upper
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_LOWER.html
select lower(catname), upper(catname) from category order by catid;
-- case: trim_both
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_TRIM.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: dog
select trim(both 'x' from 'xxdogxx');
-- case: ltrim_rtrim
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_LTRIM.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: dogxx | xxdog
select ltrim('xxdogxx', 'x'), rtrim('xxdogxx', 'x');
-- case: to_hex
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_TO_HEX.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 801
select to_hex(2049);
-- case: texttonumericalt
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_TO_NUMBER.html
-- expect: -12454.8
select to_number('12,454.8-', '99G999D9S');
-- case: bpcharcmp
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_BPCHARCMP.html
select bpcharcmp(firstname, lastname) from users order by userid limit 3;
