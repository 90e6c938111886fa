//! Compiles the built-in runbooks into the library: writes `$OUT_DIR/runbooks.rs`, one
//! `include_str!` per `docs/runbooks/*.md` (README.md excluded), sorted by file name so the
//! corpus order is stable. `include_str!` makes cargo rebuild when a runbook changes; the
//! `rerun-if-changed` on the folder catches runbooks added or removed.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let dir = manifest.join("../../docs/runbooks");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with(".md") && n != "README.md")
            .collect(),
        Err(e) => panic!("cannot read the runbooks folder {}: {e}", dir.display()),
    };
    names.sort();
    let mut out = String::from("/// (file name, contents) of every built-in runbook, sorted by file name.\npub(crate) static RUNBOOKS: &[(&str, &str)] = &[\n");
    for n in &names {
        let path = dir.join(n);
        let _ = writeln!(
            out,
            "    ({n:?}, include_str!({:?})),",
            path.display().to_string()
        );
    }
    out.push_str("];\n");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default());
    if let Err(e) = std::fs::write(out_dir.join("runbooks.rs"), out) {
        panic!("cannot write runbooks.rs: {e}");
    }
}
