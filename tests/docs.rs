//! Man pages and shell completions: the committed files under `man/` and `completions/` must be
//! exactly what `cargo run --example gen-docs` produces from the current clap definitions, and
//! every page must pass `groff -man -ww -z` without a warning.

use std::path::Path;
use std::process::Command;

#[path = "../examples/gen-docs.rs"]
mod gen_docs;

const REGEN: &str = "run cargo run --example gen-docs";

#[test]
fn committed_docs_match_the_generator() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = gen_docs::render_all();
    let names: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
    for must in [
        "man/kcptun.1",
        "man/kcptun-client.1",
        "man/kcptun-server.1",
        "man/kcptun-bench.1",
        "man/kcptun-snmp.1",
        "completions/kcptun.bash",
        "completions/_kcptun",
        "completions/kcptun.fish",
    ] {
        assert!(names.iter().any(|n| n == must), "generator lost {must}");
    }
    let mut stale = Vec::new();
    for (rel, content) in &files {
        match std::fs::read(root.join(rel)) {
            Ok(old) if old == *content => {}
            Ok(_) => stale.push(format!("{} differs", rel.display())),
            Err(e) => stale.push(format!("{}: {e}", rel.display())),
        }
    }
    // a page for a command that no longer exists
    for dir in ["man", "completions"] {
        for e in std::fs::read_dir(root.join(dir)).expect(dir).flatten() {
            let rel = Path::new(dir).join(e.file_name());
            if !files.iter().any(|(p, _)| *p == rel) {
                stale.push(format!("{} is not generated any more", rel.display()));
            }
        }
    }
    assert!(stale.is_empty(), "{}: {REGEN}", stale.join("; "));
}

#[test]
fn man_pages_pass_groff_without_warnings() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for (rel, _) in gen_docs::render_all() {
        if rel.extension().map_or(true, |e| e != "1") {
            continue;
        }
        let out = match Command::new("groff")
            .args(["-man", "-ww", "-z"])
            .arg(root.join(&rel))
            .output()
        {
            Ok(o) => o,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                panic!("install groff: apt-get install -y groff")
            }
            Err(e) => panic!("running groff: {e}"),
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "groff -man -ww -z {}: {}{stderr}",
            rel.display(),
            out.status
        );
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} man pages checked");
}

#[test]
fn bash_completion_is_valid_shell() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("completions/kcptun.bash");
    // `bash -n` parses without running; then sourcing must register the completion
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "bash -n {0} && source {0} && complete -p kcptun",
            script.display()
        ))
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("_kcptun"));
}
