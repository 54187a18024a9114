-- Spectrum, federated queries, data sharing, ML, Python UDFs: outside a local PostgreSQL.
-- case: create_external_schema
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_CREATE_EXTERNAL_SCHEMA.html
-- needs: Redshift Spectrum / AWS Glue Data Catalog
-- error: not emulated locally
create external schema spectrum_schema from data catalog database 'spectrum_db' iam_role 'arn:aws:iam::123456789012:role/myspectrumrole' create external database if not exists;
-- case: create_external_table
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_CREATE_EXTERNAL_TABLE.html
-- needs: Redshift Spectrum
-- error: not emulated locally
create external table spectrum.sales(salesid integer, listid integer) row format delimited fields terminated by '\t' stored as textfile location 's3://redshift-downloads/tickit/spectrum/sales/';
-- case: create_datashare
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_CREATE_DATASHARE.html
-- needs: Redshift data sharing
-- error: not emulated locally
create datashare salesshare;
-- case: create_model
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_CREATE_MODEL.html
-- needs: Redshift ML (SageMaker)
-- error: not emulated locally
create model customer_churn_auto_model from (select state, account_length from customer_activity) target churn function ml_fn_customer_churn_auto iam_role default settings (s3_bucket 'your-bucket');
-- case: python_udf
-- source: https://docs.aws.amazon.com/redshift/latest/dg/udf-creating-a-scalar-udf.html
-- needs: Python UDFs
-- error: not emulated locally
create function f_py_greater (a float, b float) returns float stable as $$ if a > b: return a
return b $$ language plpythonu;
-- case: create_library
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_CREATE_LIBRARY.html
-- needs: Python UDF libraries
-- error: not emulated locally
create library f_urlparse language plpythonu from 's3://mybucket/urlparse3-1.0.3.zip' iam_role 'arn:aws:iam::123456789012:role/myrole';
-- case: lambda_udf
-- source: https://docs.aws.amazon.com/redshift/latest/dg/r_CREATE_EXTERNAL_FUNCTION.html
-- needs: AWS Lambda UDFs
-- error: not emulated locally
create external function exfunc_sum(int, int) returns int stable lambda 'lambda_sum' iam_role 'arn:aws:iam::123456789012:role/Redshift-Exfunc-Test';
