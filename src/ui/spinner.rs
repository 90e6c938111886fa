//! A spinner on stderr while tools or the model run; only on a terminal.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub struct Spinner {
    stop: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Spinner {
    /// Spin before `message`; the frame in cyan when `colour`.
    pub fn start(message: String, colour: bool) -> Spinner {
        let (on, off) = if colour {
            ("\x1b[36m", "\x1b[0m")
        } else {
            ("", "")
        };
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            const FRAMES: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
            let mut i = 0usize;
            while !flag.load(Ordering::Relaxed) {
                {
                    let mut err = std::io::stderr().lock();
                    let _ = write!(
                        err,
                        "\r\x1b[2K{on}{}{off} {message}",
                        FRAMES[i % FRAMES.len()]
                    );
                    let _ = err.flush();
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(80)).await;
            }
        });
        Spinner {
            stop,
            task: Some(task),
        }
    }

    pub fn stop(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.task.take() {
            t.abort();
        }
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K");
        let _ = err.flush();
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if self.task.is_some() {
            self.finish();
        }
    }
}
