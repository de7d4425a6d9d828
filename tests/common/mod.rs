//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

pub mod cli;
pub mod smux;

/// `tests/vectors/`: the Go-produced vectors, kept in the repository (see its README.md).
pub fn vectors_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    assert!(
        dir.is_dir(),
        "test vectors not found at {}: the repository's tests/vectors/ folder is missing",
        dir.display()
    );
    dir
}

/// Parses one vector file, e.g. `load("crypt.json")`.
pub fn load(name: &str) -> serde_json::Value {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Decodes a lowercase hex string from a vector file.
pub fn unhex(v: &serde_json::Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}
