//! The `kai` binary: parse, run, exit with a documented code (see `kai::exit`).

fn main() {
    let code = kai::app::main();
    std::process::exit(code);
}
