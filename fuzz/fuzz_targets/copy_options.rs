//! The COPY / UNLOAD option parser (redshift-sql, run by the emulator) (`copy_options::parse`): it never panics; a
//! statement whose first word is not COPY or UNLOAD is `None`; what it accepts is consistent
//! (a CSV quote differs from its delimiter, an S3 bucket is a valid bucket name, a parsed
//! statement parses the same way again); an access-key secret never shows in `Debug` or in an
//! error's text.
#![no_main]

use redshift_sql::lexer::tokenize;
use libfuzzer_sys::fuzz_target;
use redshift_sql::copy_options::{
    parse, Authorization, CopyFormat, CopyOptionsError, Statement,
};

fn first_word(sql: &str) -> Option<String> {
    let tokens = tokenize(sql).ok()?;
    tokens
        .iter()
        .find(|t| !t.is_trivia())
        .map(|t| t.text.to_ascii_lowercase())
}

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = parse(sql);
    let word = first_word(sql);
    match &parsed {
        Ok(None) => assert!(
            !matches!(word.as_deref(), Some("copy" | "unload")),
            "a COPY/UNLOAD was not recognised: {sql:?}"
        ),
        Ok(Some(statement)) => {
            assert_eq!(parse(sql), parsed, "parsing is deterministic");
            let (bucket, auth) = match statement {
                Statement::Copy(c) => {
                    if let CopyFormat::Csv { delimiter, quote } = c.format {
                        assert_ne!(delimiter, quote, "{sql:?}");
                    }
                    (&c.source.bucket, &c.authorization)
                }
                Statement::Unload(u) => (&u.target.bucket, &u.authorization),
            };
            assert!((3..=63).contains(&bucket.len()), "{bucket:?}");
            if let Authorization::Keys {
                secret_access_key, ..
            } = auth
            {
                if secret_access_key.len() >= 8 {
                    assert!(
                        !format!("{statement:?}").contains(secret_access_key.as_str()),
                        "the secret shows in Debug"
                    );
                }
            }
        }
        Err(CopyOptionsError::Lex(error)) => {
            // Only the UNLOAD query literal is read outside the lexer.
            if word.as_deref() == Some("copy") {
                assert_eq!(tokenize(sql).err().as_ref(), Some(error));
            }
        }
        Err(error) => {
            let text = error.to_string();
            assert!(!text.is_empty());
            if let CopyOptionsError::InvalidCredentials(_) = error {
                assert!(!text.contains("secret_access_key="), "{text}");
            }
        }
    }
});
