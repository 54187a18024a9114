//! An ordered JSON tree and its printer: the generated files keep the key order the builders give
//! (Type, Comment, Resource, ..., Next), two-space indentation, one value per line, so the same
//! definition always gives the same bytes and a diff reads like the change.

/// A JSON value whose objects keep their insertion order.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    /// A number as written (`2`, `2.0`): the printer never reformats it.
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    pub fn str(s: impl Into<String>) -> Self {
        Json::Str(s.into())
    }

    pub fn int(n: impl Into<i64>) -> Self {
        Json::Num(n.into().to_string())
    }

    pub fn num(raw: &str) -> Self {
        Json::Num(raw.to_owned())
    }

    pub fn strs<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Self {
        Json::Arr(items.into_iter().map(|s| Json::str(s.as_ref())).collect())
    }

    /// The value of `key` in an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Pretty-printed, with a trailing newline.
    pub fn pretty(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out.push('\n');
        out
    }

    fn write(&self, out: &mut String, indent: usize) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Num(n) => out.push_str(n),
            Json::Str(s) => out.push_str(&quote(s)),
            Json::Arr(items) if items.is_empty() => out.push_str("[]"),
            Json::Obj(fields) if fields.is_empty() => out.push_str("{}"),
            Json::Arr(items) => {
                out.push_str("[\n");
                for (i, item) in items.iter().enumerate() {
                    pad(out, indent + 1);
                    item.write(out, indent + 1);
                    out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
                }
                pad(out, indent);
                out.push(']');
            }
            Json::Obj(fields) => {
                out.push_str("{\n");
                for (i, (key, value)) in fields.iter().enumerate() {
                    pad(out, indent + 1);
                    out.push_str(&quote(key));
                    out.push_str(": ");
                    value.write(out, indent + 1);
                    out.push_str(if i + 1 < fields.len() { ",\n" } else { "\n" });
                }
                pad(out, indent);
                out.push('}');
            }
        }
    }
}

fn pad(out: &mut String, indent: usize) {
    for _ in 0..indent {
        out.push_str("  ");
    }
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serializes")
}

/// Builds an object from `(key, value)` pairs, leaving out the `None`s.
#[macro_export]
macro_rules! obj {
    ($($key:expr => $value:expr),* $(,)?) => {{
        let mut fields: Vec<(String, $crate::json::Json)> = Vec::new();
        $( if let Some(v) = $crate::json::IntoField::into_field($value) { fields.push(($key.to_string(), v)); } )*
        $crate::json::Json::Obj(fields)
    }};
}

/// A value or an optional value, for [`obj!`].
pub trait IntoField {
    fn into_field(self) -> Option<Json>;
}

impl IntoField for Json {
    fn into_field(self) -> Option<Json> {
        Some(self)
    }
}

impl IntoField for Option<Json> {
    fn into_field(self) -> Option<Json> {
        self
    }
}

impl IntoField for &str {
    fn into_field(self) -> Option<Json> {
        Some(Json::str(self))
    }
}

impl IntoField for String {
    fn into_field(self) -> Option<Json> {
        Some(Json::Str(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_in_insertion_order_with_two_space_indent() {
        let value = obj! {
            "b" => Json::int(1),
            "a" => Json::strs(["x", "y"]),
            "e" => Json::Obj(vec![]),
            "skipped" => None::<Json>,
            "q" => "say \"hi\"",
        };
        assert_eq!(
            value.pretty(),
            "{\n  \"b\": 1,\n  \"a\": [\n    \"x\",\n    \"y\"\n  ],\n  \"e\": {},\n  \"q\": \"say \\\"hi\\\"\"\n}\n"
        );
        let parsed: serde_json::Value = serde_json::from_str(&value.pretty()).unwrap();
        assert_eq!(parsed["q"], "say \"hi\"");
    }
}
