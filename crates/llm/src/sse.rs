//! Server-sent-event framing of a response body.
//!
//! The `sse-stream` crate does the framing: lines cut anywhere (mid-line, mid-UTF-8
//! character, CR/LF/CRLF endings), comments, multi-line `data`, the BOM. A thin guard in
//! front of it adds what it does not do, each for a reason of kai's:
//!
//! - **Size**: the crate buffers a line or an event however long it grows; the guard
//!   fails a body that goes [`MAX_EVENT_BYTES`] without an event boundary, so a runaway
//!   server cannot fill memory before the assembler's own cap sees any data.
//! - **Not an event stream**: the crate ignores unknown fields, as the SSE spec says, so
//!   an HTML login page or a plain-text error sent as `text/event-stream` would read as
//!   an empty stream. Until the first `data` line the guard rejects any line that is
//!   not SSE, with an excerpt of it in the error.
//! - **The last event**: the crate drops an event not followed by a blank line at the
//!   end of the body; servers that stop without one (and without `[DONE]`) still meant
//!   it, so the guard ends every body with a blank line.
//!
//! Invalid UTF-8 inside a field is an error of the crate, reported as a bad response:
//! servers encode their chunks as JSON, which is valid UTF-8.

use bytes::Bytes;
use futures::{stream, Stream, StreamExt};
use sse_stream::SseByteStream;

use crate::failure::{error_chain, excerpt, excerpt_bytes, Failure};

/// The most bytes between two event boundaries (blank lines); a line is never longer.
pub(crate) const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;
/// How much of a line is kept to tell SSE from something else, and to quote it.
const HEAD_BYTES: usize = 800;

/// One event: its `event` name if it had one, and its `data` (lines joined with `\n`)
/// if it had any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    pub event: Option<String>,
    pub data: Option<String>,
}

/// The events of `body`. The first error ends the stream; a transport error becomes
/// [`Failure::Stream`], anything that is not a well-formed event stream
/// [`Failure::Bad`].
pub(crate) fn events<S, E>(body: S) -> impl Stream<Item = Result<Event, Failure>>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::error::Error,
{
    let mut guard = Guard::default();
    let checked = body
        .map(|item| item.map_err(|e| BodyError(Failure::Stream(error_chain(&e)))))
        .chain(stream::once(async { Ok(Bytes::from_static(b"\n\n")) }))
        .map(move |item| {
            let bytes = item?;
            guard.check(&bytes).map_err(BodyError)?;
            Ok::<_, BodyError>(bytes)
        });
    SseByteStream::new(checked).map(|item| {
        item.map(|sse| Event {
            event: sse.event,
            data: sse.data,
        })
        .map_err(into_failure)
    })
}

/// A failure carried through `sse-stream`'s error type and back out.
#[derive(Debug)]
struct BodyError(Failure);

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::error::Error for BodyError {}

fn into_failure(e: sse_stream::Error) -> Failure {
    match e {
        sse_stream::Error::Body(inner) => match inner.downcast::<BodyError>() {
            Ok(b) => b.0,
            Err(other) => Failure::Stream(error_chain(other.as_ref())),
        },
        sse_stream::Error::Utf8Parse(e) => {
            Failure::Bad(format!("the event stream is not valid UTF-8 ({e})"))
        }
        other => Failure::Bad(format!("the event stream is malformed: {other}")),
    }
}

/// Watches the raw bytes for what the framing crate does not check (see the module
/// docs). Lines end at `\n`; a `\r` before it is part of the line ending.
#[derive(Debug, Default)]
struct Guard {
    /// Bytes since the last blank line.
    event_bytes: usize,
    /// Whether the current line has anything but `\r` so far.
    line_has_text: bool,
    /// Whether a `data` line was seen; after that nothing is sniffed.
    seen_data: bool,
    /// Whether the first line is done (only it may start with a BOM).
    past_first_line: bool,
    /// The current line's first [`HEAD_BYTES`] while no `data` line was seen.
    head: Vec<u8>,
}

impl Guard {
    fn check(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        let mut rest = bytes;
        while !rest.is_empty() {
            let (line, complete) = match rest.iter().position(|b| *b == b'\n') {
                Some(i) => (&rest[..i], true),
                None => (rest, false),
            };
            rest = &rest[line.len() + usize::from(complete)..];
            self.event_bytes += line.len() + usize::from(complete);
            self.line_has_text |= line.iter().any(|b| *b != b'\r');
            if !self.seen_data && self.head.len() < HEAD_BYTES {
                let take = line.len().min(HEAD_BYTES - self.head.len());
                self.head.extend_from_slice(&line[..take]);
            }
            if self.event_bytes > MAX_EVENT_BYTES {
                return Err(Failure::Bad(format!(
                    "more than {MAX_EVENT_BYTES} bytes without an event boundary is not an event stream: {}",
                    excerpt_bytes(line)
                )));
            }
            if complete {
                if !self.line_has_text {
                    self.event_bytes = 0;
                }
                if !self.seen_data {
                    self.sniff()?;
                }
                self.line_has_text = false;
                self.past_first_line = true;
            }
        }
        Ok(())
    }

    /// Before any data, a line that is not SSE means this is not an event stream at all
    /// (an HTML page or plain text with a wrong content type); after that, unknown
    /// fields are ignored as the SSE spec says.
    fn sniff(&mut self) -> Result<(), Failure> {
        let head = std::mem::take(&mut self.head);
        let mut line = String::from_utf8_lossy(&head);
        if !self.past_first_line {
            if let Some(rest) = line.strip_prefix('\u{feff}') {
                line = rest.to_string().into();
            }
        }
        let line = line.strip_suffix('\r').unwrap_or(&line);
        if line.is_empty() || line.starts_with(':') {
            return Ok(());
        }
        let field = line.split_once(':').map_or(line, |(f, _)| f);
        match field {
            "data" => {
                self.seen_data = true;
                Ok(())
            }
            "event" | "id" | "retry" => Ok(()),
            _ => Err(Failure::Bad(format!(
                "expected an event stream but got: {}",
                excerpt(line)
            ))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
#[path = "sse_tests.rs"]
mod tests;
