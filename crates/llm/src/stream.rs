//! The stream assembler: chat-completion chunks in, one [`ChatResponse`] out. Pure (no
//! I/O, no clock): text deltas are joined, tool-call deltas are put together into calls,
//! usage and the finish reason are kept, and what counts as progress for the idle
//! timeout is decided here.
//!
//! Servers differ in how they stream tool calls: OpenAI sends pieces keyed by `index`
//! with the id and name in the first one; others send whole calls in one chunk without
//! index or id, repeat the name in every piece, reuse an index for a new call, or send
//! the arguments as a JSON object. All of these assemble to the same calls.

use std::collections::HashMap;

use serde_json::Value;

use crate::failure::{excerpt, extract_error, Failure};
use crate::wire::{Chunk, FunctionDelta, ToolCallDelta};
use crate::{ChatResponse, ToolCall, Usage};

/// One answer's text plus tool-call arguments may not exceed this: far beyond any real
/// answer, and it keeps a runaway server from filling memory before the stream's time
/// limit ends it.
pub(crate) const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// Accumulates chunks into one [`ChatResponse`].
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    content: String,
    calls: Vec<PartialCall>,
    /// Wire `index` → position in `calls`; remapped when a server reuses an index for a
    /// new call (a different id).
    slots: HashMap<u64, usize>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    chunks: usize,
    done: bool,
    /// Counts chunks that carried content: text, a tool-call piece, usage or a finish
    /// reason. What the idle timeout watches.
    progress: u64,
    /// Text and tool-call bytes so far, against [`MAX_RESPONSE_BYTES`].
    bytes: usize,
}

impl Assembler {
    /// Whether `[DONE]` arrived: nothing after it is read.
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// Changes whenever a chunk carried content; compare before and after a push.
    pub(crate) fn progress(&self) -> u64 {
        self.progress
    }

    /// Takes one server-sent event (its `event` name and its `data`); returns the text
    /// to hand to `on_text`, if any. An `error` event is the server's report of a
    /// failure, whatever its data looks like.
    pub(crate) fn push_event(
        &mut self,
        event: Option<&str>,
        data: Option<&str>,
    ) -> Result<Option<String>, Failure> {
        if event == Some("error") {
            let data = data.unwrap_or_default();
            // The data is usually `{"error": {...}}` or `{"message": ...}`, sometimes text.
            let (message, _) = extract_error(data, 200);
            return Err(Failure::InStream(
                if data.trim().is_empty() {
                    "an error event without a message"
                } else {
                    &message
                }
                .to_string(),
            ));
        }
        match data {
            Some(data) => self.push_data(data),
            // Metadata only (`event: ping`, `id: 7`): nothing to assemble.
            None => Ok(None),
        }
    }

    /// Takes one SSE `data` payload; returns the text to hand to `on_text`, if any.
    pub(crate) fn push_data(&mut self, data: &str) -> Result<Option<String>, Failure> {
        let data = data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(None);
        }
        if data.is_empty() {
            return Ok(None);
        }
        let chunk: Chunk = serde_json::from_str(data).map_err(|e| {
            Failure::Bad(format!(
                "a stream chunk is not valid JSON ({e}): {}",
                excerpt(data)
            ))
        })?;
        self.push_chunk(chunk)
    }

    fn push_chunk(&mut self, chunk: Chunk) -> Result<Option<String>, Failure> {
        if let Some(err) = chunk.error.filter(|e| !e.is_null()) {
            let (message, _) = extract_error(&serde_json::json!({ "error": err }).to_string(), 200);
            return Err(Failure::InStream(message));
        }
        self.chunks += 1;
        let mut progressed = false;
        if let Some(u) = chunk.usage {
            progressed = true;
            let prompt = u.prompt_tokens.unwrap_or(0);
            let completion = u.completion_tokens.unwrap_or(0);
            let cached = u
                .prompt_tokens_details
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0);
            self.usage = Some(Usage {
                prompt_tokens: prompt,
                completion_tokens: completion,
                total_tokens: u.total_tokens.unwrap_or(prompt + completion),
                // Part of the prompt: a server claiming more than the whole is not believed
                // beyond it.
                cached_tokens: cached.min(prompt),
            });
        }
        let mut text = String::new();
        // We never ask for n > 1; any other choice would be a server bug, ignore it.
        for choice in chunk
            .choices
            .into_iter()
            .filter(|c| c.index.unwrap_or(0) == 0)
        {
            if let Some(reason) = choice.finish_reason.filter(|r| !r.is_empty()) {
                self.finish_reason = Some(reason);
                progressed = true;
            }
            for delta in [choice.delta, choice.message].into_iter().flatten() {
                if let Some(Value::String(s)) = delta.content {
                    text.push_str(&s);
                }
                for (position, call) in delta.tool_calls.into_iter().enumerate() {
                    progressed |= self.push_call(position as u64, call);
                }
            }
        }
        if progressed || !text.is_empty() {
            self.progress += 1;
        }
        self.content.push_str(&text);
        self.bytes += text.len();
        if self.bytes > MAX_RESPONSE_BYTES {
            return Err(Failure::Bad(format!(
                "the answer grew past {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        Ok(Some(text).filter(|t| !t.is_empty()))
    }

    /// The failure when the idle timeout runs out: nothing at all yet reads as "did not
    /// answer", a stop after some content as a stall.
    pub(crate) fn idle_failure(&self, secs: u64) -> Failure {
        if self.progress == 0 {
            Failure::Timeout(secs)
        } else {
            Failure::Stalled(secs)
        }
    }

    /// Returns whether the delta added anything (a new call, a name, argument text).
    fn push_call(&mut self, position: u64, call: ToolCallDelta) -> bool {
        let id = call.id.filter(|i| !i.is_empty());
        // Without an index, a known id names its call; otherwise the position in this
        // chunk's list does (whole calls in one chunk, non-streamed completions).
        let key = match (call.index, &id) {
            (Some(i), _) => i,
            (None, Some(id)) => match self.calls.iter().position(|c| &c.id == id) {
                Some(slot) => return self.extend_call(slot, None, call.function),
                None => u64::MAX - self.calls.len() as u64,
            },
            (None, None) => position,
        };
        let (slot, opened) = match self.slots.get(&key) {
            Some(&slot)
                if id.is_none()
                    || self.calls[slot].id.is_empty()
                    || Some(&self.calls[slot].id) == id.as_ref() =>
            {
                (slot, false)
            }
            _ => {
                self.calls.push(PartialCall::default());
                let slot = self.calls.len() - 1;
                self.slots.insert(key, slot);
                (slot, true)
            }
        };
        // Opening a call is progress even before its name arrives.
        self.extend_call(slot, id, call.function) || opened
    }

    fn extend_call(
        &mut self,
        slot: usize,
        id: Option<String>,
        function: Option<FunctionDelta>,
    ) -> bool {
        let Some(c) = self.calls.get_mut(slot) else {
            return false;
        };
        let mut changed = false;
        let mut added = 0;
        if let Some(id) = id {
            if c.id.is_empty() {
                c.id = id;
                changed = true;
            }
        }
        let Some(f) = function else { return changed };
        if let Some(name) = f.name.filter(|n| !n.is_empty()) {
            // Names come whole in the first delta; some servers repeat them in every
            // delta, which must not double them.
            if c.name.is_empty() {
                added += name.len();
                c.name = name;
                changed = true;
            } else if c.name != name {
                added += name.len();
                c.name.push_str(&name);
                changed = true;
            }
        }
        match f.arguments {
            Some(Value::String(s)) if !s.is_empty() => {
                added += s.len();
                c.arguments.push_str(&s);
                changed = true;
            }
            Some(Value::String(_)) | Some(Value::Null) | None => {}
            Some(other) if c.arguments.is_empty() => {
                c.arguments = other.to_string();
                added += c.arguments.len();
                changed = true;
            }
            Some(_) => {}
        }
        self.bytes += added;
        changed
    }

    /// The response once the stream ended (or `[DONE]` came).
    pub(crate) fn finish(self) -> Result<ChatResponse, Failure> {
        let has_calls = self.calls.iter().any(|c| !c.name.is_empty());
        if !self.done && self.content.is_empty() && !has_calls && self.finish_reason.is_none() {
            return Err(Failure::Bad(if self.chunks == 0 {
                "the response held no stream chunks at all".into()
            } else {
                "the stream ended before the model produced any output".into()
            }));
        }
        // A stream that just stops (no finish reason, no `[DONE]`) is accepted for text,
        // which compatible servers do; but a tool call whose arguments are not yet valid
        // JSON shows the connection was cut mid-call, and running it would be a guess.
        if !self.done && self.finish_reason.is_none() {
            if let Some(c) = self.calls.iter().find(|c| {
                !c.arguments.trim().is_empty()
                    && serde_json::from_str::<serde::de::IgnoredAny>(&c.arguments).is_err()
            }) {
                return Err(Failure::Stream(format!(
                    "the stream ended in the middle of the {} tool call ({} bytes of arguments, not yet complete JSON)",
                    if c.name.is_empty() { "unnamed" } else { c.name.as_str() },
                    c.arguments.len()
                )));
            }
        }
        let mut tool_calls = Vec::new();
        for (i, c) in self.calls.into_iter().enumerate() {
            if c.name.is_empty() {
                // Nothing can run a call without a name; dropping it lets the turn go on.
                tracing::warn!(
                    index = i,
                    "the model sent a tool call without a name; ignored"
                );
                continue;
            }
            tool_calls.push(ToolCall {
                id: if c.id.is_empty() {
                    // The agent pairs results with calls by id, so every call needs one.
                    format!("call_{}", uuid::Uuid::new_v4().simple())
                } else {
                    c.id
                },
                name: c.name,
                // Tools without parameters often come with "", which is not JSON.
                arguments: if c.arguments.trim().is_empty() {
                    "{}".into()
                } else {
                    c.arguments
                },
            });
        }
        Ok(ChatResponse {
            content: self.content,
            tool_calls,
            finish_reason: self.finish_reason,
            usage: self.usage,
        })
    }
}

/// A non-streamed completion (`application/json`), from servers that ignore `stream`.
pub(crate) fn parse_completion(text: &str) -> Result<ChatResponse, Failure> {
    let chunk: Chunk = serde_json::from_str(text).map_err(|e| {
        Failure::Bad(format!(
            "the JSON response is not a chat completion ({e}): {}",
            excerpt(text)
        ))
    })?;
    let mut a = Assembler::default();
    a.push_chunk(chunk)?;
    a.done = true;
    a.finish()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
#[path = "stream_tests.rs"]
mod tests;
