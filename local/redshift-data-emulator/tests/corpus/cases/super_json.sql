-- SUPER, JSON_PARSE, PartiQL navigation and the JSON functions on VARCHAR.
-- case: json_parse_serialize
-- source: https://docs.aws.amazon.com/redshift/latest/dg/JSON_SERIALIZE.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: {"a":1}
select json_serialize(json_parse('{"a":1}'));
-- case: json_parse_is_array
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_is_array.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: t
select is_array(json_parse('[1,2]'));
-- case: json_typeof_object
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_json_typeof.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: object
select json_typeof(json_parse('{"a":1}'));
-- case: is_object
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_is_object.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: t
select is_object(json_parse('{"a":1}'));
-- case: get_array_length
-- source: https://docs.aws.amazon.com/redshift/latest/dg/get_array_length.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 3
select get_array_length(json_parse('[1,2,3]'));
-- case: super_navigation_index
-- source: https://docs.aws.amazon.com/redshift/latest/dg/query-super.html
create temp table t_nav (data super);
insert into t_nav values (json_parse('{"items":[{"id":7},{"id":8}]}'));
select data.items[0].id from t_nav;
-- case: super_navigation_key
-- source: https://docs.aws.amazon.com/redshift/latest/dg/query-super.html
create temp table t_nav2 (c super);
insert into t_nav2 values (json_parse('{"o_orderkey": 5}'));
select c.o_orderkey from t_nav2;
-- case: super_unnest
-- source: https://docs.aws.amazon.com/redshift/latest/dg/query-super.html
create temp table t_nav3 (c_orders super);
insert into t_nav3 values (json_parse('[{"k":1},{"k":2}]'));
select o.k from t_nav3 c, c.c_orders o;
-- case: json_extract_path_text
-- source: https://docs.aws.amazon.com/redshift/latest/dg/JSON_EXTRACT_PATH_TEXT.html
-- expect: star
select json_extract_path_text('{"f2":{"f3":1},"f4":{"f5":99,"f6":"star"}}','f4', 'f6');
-- case: json_extract_path_text_missing
-- source: https://docs.aws.amazon.com/redshift/latest/dg/JSON_EXTRACT_PATH_TEXT.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: 
select json_extract_path_text('{"f2":{"f3":1}}','f4');
-- case: json_array_length
-- source: https://docs.aws.amazon.com/redshift/latest/dg/JSON_ARRAY_LENGTH.html
-- expect: 5
select json_array_length('[11,12,13,{"f1":21,"f2":[25,26]},14]');
-- case: json_extract_array_element_text
-- source: https://docs.aws.amazon.com/redshift/latest/dg/JSON_EXTRACT_ARRAY_ELEMENT_TEXT.html
-- expect: 113
select json_extract_array_element_text('[111,112,113]', 2);
-- case: is_valid_json
-- source: https://docs.aws.amazon.com/redshift/latest/dg/IS_VALID_JSON.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: t | f
select is_valid_json('{"a":2}'), is_valid_json('{"a":2');
-- case: is_valid_json_array
-- source: https://docs.aws.amazon.com/redshift/latest/dg/IS_VALID_JSON_ARRAY.html
-- note: derived (from the page's definition, not an example output shown on it)
-- expect: t
select is_valid_json_array('[]');
-- case: json_extract_varchar_column
-- source: https://docs.aws.amazon.com/redshift/latest/dg/JSON_EXTRACT_PATH_TEXT.html
create temp table t_json (j varchar(200));
insert into t_json values ('{"a":{"b":"c"}}');
select json_extract_path_text(j, 'a', 'b') from t_json;
-- case: super_cast_varchar
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_SUPER_type.html
select json_parse('"text"')::varchar;
