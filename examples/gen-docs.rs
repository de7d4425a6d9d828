//! Writes the man pages (`man/*.1`) and shell completions (`completions/`) from the clap
//! definitions of `kcptun` ([`kcptun::cmd::clap_command`]).
//!
//! Run `cargo run --example gen-docs` after changing a flag, its help or the version; the test
//! `tests/docs.rs` fails while the committed files differ from what [`render_all`] produces. The
//! output is deterministic (no date, no paths), so the files can be compared byte for byte.

use std::path::{Path, PathBuf};

use clap_complete::Shell;

/// Every generated file: path relative to the crate root, and its content.
pub fn render_all() -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut top = kcptun::cmd::clap_command();
    top.build();
    man_pages(&top, &mut out);
    for (shell, file) in [
        (Shell::Bash, "kcptun.bash"),
        (Shell::Zsh, "_kcptun"),
        (Shell::Fish, "kcptun.fish"),
    ] {
        let mut cmd = kcptun::cmd::clap_command();
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd, "kcptun", &mut buf);
        out.push((Path::new("completions").join(file), buf));
    }
    out
}

/// `man/<display name>.1` for `cmd` and, recursively, its visible subcommands (so that every
/// `kcptun-x(1)` a page refers to exists).
fn man_pages(cmd: &clap::Command, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    let man = clap_mangen::Man::new(cmd.clone())
        .manual("kcptun manual")
        .source(format!("kcptun {}", env!("CARGO_PKG_VERSION")));
    let mut buf = Vec::new();
    man.render(&mut buf).expect("rendering to memory");
    out.push((Path::new("man").join(man.get_filename()), buf));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        man_pages(sub, out);
    }
}

#[allow(dead_code)] // unused where tests/docs.rs includes this file as a module
fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (rel, content) in render_all() {
        let path = root.join(&rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let old = std::fs::read(&path).ok();
        if old.as_deref() != Some(&content[..]) {
            std::fs::write(&path, &content)?;
            println!("wrote {}", rel.display());
        } else {
            println!("unchanged {}", rel.display());
        }
    }
    Ok(())
}
