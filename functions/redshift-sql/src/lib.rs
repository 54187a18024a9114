//! Amazon Redshift SQL in one place, shared by the submitter's script preparation
//! (`etl_callback::script`), the local Redshift Data API emulator and the pipeline generator:
//!
//! - [`lexer`]: Redshift/PostgreSQL lexical structure: tokens, statement splitting;
//! - [`translate`]: Redshift → PostgreSQL, what the local emulator runs (token-level rewrites);
//! - [`lineage`]: the tables a script reads and writes (`pipeline check`, `pipeline lineage`);
//! - [`copy_options`]: the grammar of `COPY … FROM 's3://…'` and `UNLOAD … TO 's3://…'`;
//! - [`compat`]: the Redshift functions and views the emulator installs in PostgreSQL;
//! - [`transaction`]: which statements commit the transaction they run in, and which Redshift
//!   refuses inside a transaction block (the emulator's batches and `pipeline check`).
//!
//! Every Redshift fact here cites the page of the Amazon Redshift Database Developer Guide that
//! defines it. No I/O and no SDK: the crate builds in seconds and fuzzes without the server.

pub mod compat;
pub mod copy_options;
mod dialect;
pub mod lexer;
pub mod lineage;
pub mod transaction;
pub mod translate;
