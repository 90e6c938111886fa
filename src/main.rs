//! The `kai` binary: parse, run, exit with a documented code (see `kai::exit`).

fn main() {
    std::process::exit(2);
}
