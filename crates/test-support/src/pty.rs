//! Running `kai` in a pseudo-terminal (rexpect), as a user at a terminal would.

use std::process::Command;

use rexpect::session::PtySession;

/// How long one expectation may wait: generous, a "does not hang" bound.
pub const PTY_TIMEOUT_MS: u64 = 90_000;

/// Exit code of a finished rexpect process (its WaitStatus comes from `nix`, which the
/// tests do not depend on directly, so read its Debug form: `Exited(Pid(1), 8)`).
pub fn exit_code(p: &PtySession) -> i32 {
    let s = format!("{:?}", p.process().wait().unwrap());
    let code = s.rsplit(", ").next().unwrap().trim_end_matches(')');
    code.parse().unwrap_or_else(|_| panic!("not an exit: {s}"))
}

/// Run `cmd` in a pseudo-terminal, send each answer after its expected text, wait for
/// the end; (exit code, transcript).
pub fn run_pty(cmd: Command, script: &[(&str, &str)]) -> (i32, String) {
    let mut p = rexpect::session::spawn_command(cmd, Some(PTY_TIMEOUT_MS)).unwrap();
    let mut transcript = String::new();
    for (expect, answer) in script {
        transcript.push_str(
            &p.exp_string(expect)
                .unwrap_or_else(|e| panic!("waiting for {expect:?}: {e}\n{transcript}")),
        );
        transcript.push_str(expect);
        p.send_line(answer).unwrap();
    }
    transcript.push_str(&p.exp_eof().unwrap());
    (exit_code(&p), transcript)
}
