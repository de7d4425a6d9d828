//! Config files (`-c FILE`): JSON with Go kcptun's keys, or YAML with the same keys when the name
//! ends in `.yaml`/`.yml`.
//!
//! [`load`] reads and parses the file into its top-level key/value pairs; the
//! settings resolver matches them case-insensitively against the flag table (as Go's
//! `encoding/json` does), type-checks them and reports unknown keys as a warning. Errors name the
//! file, and the key and line where one is known.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::error::CliError;

/// The parsed top level of a config file.
#[derive(Debug)]
pub(crate) struct FileValues {
    pub path: PathBuf,
    /// `(key as written, value)`, sorted by key; `null` values are dropped (Go leaves the field
    /// as the flags set it).
    pub entries: Vec<(String, Value)>,
    text: String,
    yaml: bool,
}

impl FileValues {
    /// Builds the error for `key` having a bad value, with the line where it appears.
    pub(crate) fn key_error(&self, key: &str, msg: &str) -> CliError {
        let line = self
            .line_of(key)
            .map(|l| format!(" (line {l})"))
            .unwrap_or_default();
        CliError::Config {
            path: self.path.clone(),
            msg: format!("key \"{key}\"{line}: {msg}"),
        }
    }

    /// 1-based line of the first occurrence of `key` as a key (best effort).
    pub(crate) fn line_of(&self, key: &str) -> Option<usize> {
        let quoted = format!("\"{key}\"");
        self.text
            .lines()
            .position(|l| {
                let t = l.trim_start();
                if self.yaml {
                    t.strip_prefix(key)
                        .is_some_and(|r| r.trim_start().starts_with(':'))
                        || t.strip_prefix(&quoted)
                            .is_some_and(|r| r.trim_start().starts_with(':'))
                } else {
                    l.contains(&quoted)
                }
            })
            .map(|i| i + 1)
    }
}

/// Reads `path` and returns its top-level keys. YAML when the extension is `yaml`/`yml`
/// (case-insensitive), JSON otherwise.
pub(crate) fn load(path: &Path) -> Result<FileValues, CliError> {
    let err = |msg: String| CliError::Config {
        path: path.to_path_buf(),
        msg,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let yaml = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
    let value: Value = if yaml {
        if text.trim().is_empty() {
            Value::Object(Default::default())
        } else {
            serde_yaml_ng::from_str(&text).map_err(|e| err(format!("malformed YAML: {e}")))?
        }
    } else {
        serde_json::from_str(&text).map_err(|e| err(format!("malformed JSON: {e}")))?
    };
    let map = match value {
        Value::Object(m) => m,
        Value::Null if yaml => Default::default(),
        other => {
            return Err(err(format!(
                "expected an object of settings at the top level, found {}",
                type_name(&other)
            )))
        }
    };
    let entries = map.into_iter().filter(|(_, v)| !v.is_null()).collect();
    Ok(FileValues {
        path: path.to_path_buf(),
        entries,
        text,
        yaml,
    })
}

/// JSON type name for messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a fractional number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
