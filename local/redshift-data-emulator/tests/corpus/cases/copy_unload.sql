-- COPY and UNLOAD need Amazon S3: the emulator runs them on the local S3 before any translation
-- (docs/copy-unload.md, tests/copy_unload.rs); this runner has no S3, so these cases check that the
-- translation alone names them.
-- case: copy_csv
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_COPY_command_examples.html
-- needs: Amazon S3
-- error: not emulated locally
copy category from 's3://redshift-downloads/tickit/category_pipe.txt' iam_role 'arn:aws:iam::0123456789012:role/MyRedshiftRole' delimiter '|' region 'us-east-1';
-- case: copy_json_auto
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_COPY_command_examples.html
-- needs: Amazon S3
-- error: not emulated locally
copy category from 's3://mybucket/category_object_auto.json' iam_role 'arn:aws:iam::0123456789012:role/MyRedshiftRole' json 'auto';
-- case: copy_parquet
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_COPY_command_examples.html
-- needs: Amazon S3
-- error: not emulated locally
copy listing from 's3://mybucket/data/listings/parquet/' iam_role 'arn:aws:iam::0123456789012:role/MyRedshiftRole' format as parquet;
-- case: copy_manifest_gzip
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_COPY_command_examples.html
-- needs: Amazon S3
-- error: not emulated locally
copy customer from 's3://mybucket/cust.manifest' iam_role 'arn:aws:iam::0123456789012:role/MyRedshiftRole' manifest gzip;
-- case: unload_csv
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_UNLOAD_command_examples.html
-- needs: Amazon S3
-- error: not emulated locally
unload ('select * from venue') to 's3://mybucket/unload/' iam_role 'arn:aws:iam::0123456789012:role/MyRedshiftRole' csv;
-- case: unload_parquet_partition
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_UNLOAD_command_examples.html
-- needs: Amazon S3
-- error: not emulated locally
unload ('select * from lineitem') to 's3://mybucket/lineitem/' iam_role 'arn:aws:iam::0123456789012:role/MyRedshiftRole' parquet partition by (l_shipdate);
-- case: unload_quoted_literal
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_UNLOAD_command_examples.html
-- needs: Amazon S3
-- error: not emulated locally
unload ('select venuename, venuecity from venue where venuestate=\'NV\'') to 's3://mybucket/tickit/unload/venue_' iam_role 'arn:aws:iam::0123456789012:role/MyRedshiftRole';
