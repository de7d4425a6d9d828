//! The repository stands alone: a fresh clone has everything its tests, CI and documents refer
//! to. No tracked file points at a folder beside the clone, and every relative link in a Markdown
//! file resolves to a file or folder that exists.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Tracked files (with git), else every file below the root except `target/` and `.git/`.
fn files() -> Vec<PathBuf> {
    let out = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root())
        .output();
    if let Ok(o) = out {
        if o.status.success() && !o.stdout.is_empty() {
            return o
                .stdout
                .split(|b| *b == 0)
                .filter(|s| !s.is_empty())
                .map(|s| PathBuf::from(String::from_utf8_lossy(s).into_owned()))
                .collect();
        }
    }
    let mut all = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(root().join(&rel))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name();
            if name == "target" || name == ".git" {
                continue;
            }
            let p = rel.join(&name);
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(p);
            } else {
                all.push(p);
            }
        }
    }
    all
}

#[test]
fn nothing_points_outside_the_repository() {
    let needle = ["..", "/shared"].concat();
    let mut bad = Vec::new();
    for rel in files() {
        if rel.extension().is_some_and(|e| e == "lock" || e == "json") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(root().join(&rel)) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            if line.contains(&needle) {
                bad.push(format!("{}:{}: {}", rel.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "these lines refer to a folder beside the repository, which a fresh clone lacks \
         (keep what they need inside the repository):\n{}",
        bad.join("\n")
    );
}

/// The targets of `[text](target)` links in `text`, without `#fragment`s.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = rest[..end].split('#').next().unwrap_or("").trim();
        if !target.is_empty() {
            out.push(target.to_string());
        }
        rest = &rest[end..];
    }
    out
}

#[test]
fn every_relative_markdown_link_resolves() {
    let mut checked = 0;
    let mut bad = Vec::new();
    for rel in files() {
        if rel.extension().map_or(true, |e| e != "md") {
            continue;
        }
        let text = std::fs::read_to_string(root().join(&rel)).unwrap_or_default();
        let dir = rel.parent().unwrap_or(Path::new(""));
        for target in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            if !root().join(dir).join(&target).exists() {
                bad.push(format!("{} → {target}", rel.display()));
            }
        }
    }
    assert!(
        checked >= 3,
        "only {checked} relative links found: is the scan broken?"
    );
    assert!(bad.is_empty(), "broken links:\n{}", bad.join("\n"));
}

#[test]
fn link_scanner_finds_links() {
    assert_eq!(
        links("see [a](docs/a.md#x) and [b](http://e/) [c]( )"),
        vec!["docs/a.md".to_string(), "http://e/".to_string()]
    );
}
