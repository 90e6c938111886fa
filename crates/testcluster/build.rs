//! The scenarios are embedded with `include_dir!`, which cargo does not track by itself:
//! tell it to rebuild this crate when any scenario file changes.
fn main() {
    println!("cargo:rerun-if-changed=../../tests/scenarios");
    println!("cargo:rerun-if-changed=../../scripts/build-cluster.sh");
    println!("cargo:rerun-if-changed=../../scripts/install-deps.sh");
}
