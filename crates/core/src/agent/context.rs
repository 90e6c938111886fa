//! Keeping every request within the context budget.
//!
//! A long session cannot send everything it ever saw. Before each request the history is
//! fitted to the budget, giving things up in this order, each step only while the
//! request is still too large:
//!
//! 1. tool outputs of earlier turns, oldest first, each replaced by a one-line note the
//!    model can act on (which call it was, how large, "call the tool again if needed");
//! 2. earlier turns, oldest first, summarised: the question and the first lines of the
//!    answer (extractive and deterministic: no extra model call), with the tools used;
//! 3. the oldest summarised turns, dropped, with one note saying so;
//! 4. tool outputs of the current turn's earlier steps, as in 1;
//! 5. the largest remaining tool outputs (the latest step's), cut down to a floor.
//!
//! The system prompt, the latest question and the latest step's tool results are never
//! dropped (the results can only be cut, never below [`TRUNCATE_FLOOR_BYTES`]). When
//! even that is too large the request is not sent: a clear error beats a request the
//! endpoint rejects or silently truncates.
//!
//! The fitting edits the history itself, so the work is not redone every step, and a
//! saved session holds the fitted (smaller) history.

use std::ops::Range;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use kai_llm::{ChatMessage, Role, ToolCall, ToolSpec};

/// How an elided tool output's note starts (it is followed by which call it was).
pub const ELIDED_PREFIX: &str = "[older tool output elided to fit the context window";
/// How the answer of a summarised turn starts.
pub const SUMMARY_MARK: &str = "[earlier turn, summarised to fit the context window]";
/// The message that stands for the turns dropped entirely.
pub const DROPPED_NOTE: &str =
    "[kai: the earliest turns of this session were dropped to fit the context window]";

/// A tool result is not truncated below this many bytes: a little evidence beats none.
pub const TRUNCATE_FLOOR_BYTES: usize = 2048;
/// JSON around the messages and tools that is not in our own serialisation of them:
/// model, stream, temperature, tool_choice, stream_options, per-item wrappers.
const REQUEST_OVERHEAD_BYTES: usize = 256;
const MESSAGE_OVERHEAD_BYTES: usize = 16;
/// `"type":"function","function":{...}` around each tool call and declaration.
pub(super) const WRAPPER_OVERHEAD_BYTES: usize = 40;

/// A summarised turn keeps this much of its question ...
const SUMMARY_QUESTION_BYTES: usize = 300;
/// ... and this many lines (and bytes) of its answer ...
const SUMMARY_ANSWER_LINES: usize = 3;
const SUMMARY_ANSWER_BYTES: usize = 400;
/// ... and names this many of the tool calls it made.
const SUMMARY_TOOLS: usize = 6;
/// A call's description in a note or summary is cut to this many characters.
const CALL_SUMMARY_CHARS: usize = 100;

/// The request budget for a model whose context window (prompt and answer together) is
/// `window` tokens: the window less room for the answer (a quarter of it, at most 16k
/// tokens, at least 512), so a request that fits the budget leaves the model space to
/// reply.
pub fn budget_for_window(window: u64) -> usize {
    let window = usize::try_from(window).unwrap_or(usize::MAX);
    let reserve = (window / 4).clamp(512, 16_384);
    window.saturating_sub(reserve).max(1_024)
}

/// How full the context is, for `/usage`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextReport {
    /// The budget every request is kept under, in (estimated) tokens.
    pub budget_tokens: usize,
    /// The last request's size after fitting, in estimated tokens (scaled by what the
    /// provider's own counts showed about the estimate); 0 before the first request.
    pub last_request_tokens: usize,
    /// The provider's count of the last request's prompt, when it reported usage.
    pub last_prompt_tokens: Option<u64>,
    /// Tool outputs in the history replaced by a note.
    pub elided_outputs: usize,
    /// Earlier turns in the history reduced to a summary.
    pub summarised_turns: usize,
    /// Whether the earliest turns were dropped entirely.
    pub dropped_turns: bool,
}

impl ContextReport {
    /// Count what the fitting has done to `history`.
    pub fn of_history(history: &[ChatMessage]) -> Self {
        let starts =
            |m: &ChatMessage, p: &str| m.content.as_deref().is_some_and(|c| c.starts_with(p));
        Self {
            elided_outputs: history
                .iter()
                .filter(|m| m.role == Role::Tool && starts(m, ELIDED_PREFIX))
                .count(),
            summarised_turns: history
                .iter()
                .filter(|m| m.role == Role::Assistant && starts(m, SUMMARY_MARK))
                .count(),
            dropped_turns: history
                .iter()
                .any(|m| m.role == Role::User && starts(m, DROPPED_NOTE)),
            ..Self::default()
        }
    }
}

/// The request's messages once fitted, and their size.
#[derive(Debug)]
pub struct Fitted {
    pub messages: Vec<ChatMessage>,
    /// Bytes of the whole request (messages, tool declarations, overhead), estimated.
    pub bytes: usize,
}

/// Fit `history` (edited in place) behind `system` into `budget` bytes of request with
/// `tools` declared. `Err(bytes)`: the smallest request reachable is still that large.
///
/// `to_model` is the egress every message passes on its way out: sizes are measured,
/// and notes, summaries and cuts are made, on what is sent, never on the raw text (a
/// cut through a credential could leave a prefix the scrubber no longer recognises).
pub fn fit(
    history: &mut Vec<ChatMessage>,
    system: ChatMessage,
    tools: &[ToolSpec],
    budget: usize,
    to_model: fn(&ChatMessage) -> ChatMessage,
) -> Result<Fitted, usize> {
    let fixed = wire_bytes(&system)
        + serde_json::to_string(tools).map_or(0, |t| t.len())
        + tools.len() * WRAPPER_OVERHEAD_BYTES
        + REQUEST_OVERHEAD_BYTES;
    let mut fit = Fitting::new(history, fixed, to_model);

    // 1. Tool outputs of earlier turns, oldest first.
    let current = current_question(history);
    for i in 0..current {
        if fit.total <= budget {
            break;
        }
        fit.elide(history, i);
    }

    // 2. Earlier turns, oldest first, summarised.
    while fit.total > budget {
        let current = current_question(history);
        let next = earlier_turns(history, current).into_iter().find_map(|r| {
            let summary = summarise(&fit.out[r.clone()])?;
            let now: usize = fit.sizes[r.clone()].iter().sum();
            let then: usize = summary.iter().map(|m| wire_bytes(&to_model(m))).sum();
            (then < now).then_some((r, summary))
        });
        let Some((range, summary)) = next else { break };
        fit.splice(history, range, summary);
    }

    // 3. The oldest (summarised) turns, dropped, with a note.
    while fit.total > budget {
        let current = current_question(history);
        let Some(range) = earlier_turns(history, current).into_iter().next() else {
            break;
        };
        fit.splice(history, range, Vec::new());
        if !history.first().is_some_and(is_dropped_note) {
            fit.splice(history, 0..0, vec![ChatMessage::user(DROPPED_NOTE)]);
        }
    }

    // 4. Tool outputs of the current turn's earlier steps; the latest step's are what
    //    the model is about to read.
    let current = current_question(history);
    let latest_step = history
        .iter()
        .rposition(|m| m.role == Role::Assistant)
        .unwrap_or(0);
    for i in current..latest_step {
        if fit.total <= budget {
            break;
        }
        fit.elide(history, i);
    }

    // 5. Cut the largest tool result, repeatedly, never below the floor.
    let mut at_floor = vec![false; history.len()];
    while fit.total > budget {
        let Some(i) = (0..history.len())
            .filter(|&i| history[i].role == Role::Tool && !at_floor[i])
            .max_by_key(|&i| fit.sizes[i])
        else {
            break;
        };
        // The cut text is kept as the history; passing it through egress again changes
        // nothing.
        let content = fit.out[i].content.clone().unwrap_or_default();
        let excess = fit.total - budget;
        // The marker and JSON escaping cost a little; ask for a bit more than the excess
        // so one cut usually suffices.
        let keep = content
            .len()
            .saturating_sub(excess + 128)
            .max(TRUNCATE_FLOOR_BYTES);
        if keep >= content.len() {
            at_floor[i] = true;
            continue;
        }
        let head = &content[..floor_char_boundary(&content, keep)];
        let text = format!(
            "{head}\n[... {} bytes cut here to fit the context window]",
            content.len() - head.len()
        );
        at_floor[i] = head.len() <= TRUNCATE_FLOOR_BYTES;
        fit.replace(history, i, text);
    }

    if fit.total > budget {
        return Err(fit.total);
    }
    let bytes = fit.total;
    let mut messages = Vec::with_capacity(fit.out.len() + 1);
    messages.push(system);
    messages.extend(fit.out);
    Ok(Fitted { messages, bytes })
}

/// The history as it will be sent, with each message's size, while it is being fitted.
struct Fitting {
    out: Vec<ChatMessage>,
    sizes: Vec<usize>,
    total: usize,
    to_model: fn(&ChatMessage) -> ChatMessage,
}

impl Fitting {
    fn new(
        history: &[ChatMessage],
        fixed: usize,
        to_model: fn(&ChatMessage) -> ChatMessage,
    ) -> Self {
        let out: Vec<ChatMessage> = history.iter().map(to_model).collect();
        let sizes: Vec<usize> = out.iter().map(wire_bytes).collect();
        let total = fixed + sizes.iter().sum::<usize>();
        Self {
            out,
            sizes,
            total,
            to_model,
        }
    }

    /// Replace message `i`'s content in the history and re-measure what is sent for it.
    fn replace(&mut self, history: &mut [ChatMessage], i: usize, text: String) {
        history[i].content = Some(text);
        self.out[i] = (self.to_model)(&history[i]);
        let size = wire_bytes(&self.out[i]);
        self.total = self.total - self.sizes[i] + size;
        self.sizes[i] = size;
    }

    /// Replace the messages in `range` by `with`, in the history and in what is sent.
    fn splice(
        &mut self,
        history: &mut Vec<ChatMessage>,
        range: Range<usize>,
        with: Vec<ChatMessage>,
    ) {
        let out: Vec<ChatMessage> = with.iter().map(self.to_model).collect();
        let sizes: Vec<usize> = out.iter().map(wire_bytes).collect();
        let removed: usize = self.sizes[range.clone()].iter().sum();
        self.total = self.total - removed + sizes.iter().sum::<usize>();
        history.splice(range.clone(), with);
        self.out.splice(range.clone(), out);
        self.sizes.splice(range, sizes);
    }

    /// Replace tool output `i` by a note naming its call, when that saves much.
    fn elide(&mut self, history: &mut [ChatMessage], i: usize) {
        if history[i].role != Role::Tool || is_note(&history[i]) {
            return;
        }
        let content = self.out[i].content.as_deref().unwrap_or_default();
        let call = history[i]
            .tool_call_id
            .as_deref()
            .and_then(|id| find_call(&self.out[..i], id));
        let what = call.map_or_else(|| "a tool call".to_string(), describe_call);
        let note = format!(
            "{ELIDED_PREFIX}: {what} (≈{} tokens); call the tool again if needed]",
            kai_text::group_digits(crate::agent::estimate_tokens(content) as u64)
        );
        if content.len() > note.len() * 2 {
            self.replace(history, i, note);
        }
    }
}

/// Index of the latest question: where the current turn starts.
fn current_question(history: &[ChatMessage]) -> usize {
    history
        .iter()
        .rposition(|m| m.role == Role::User && !is_dropped_note(m))
        .unwrap_or(0)
}

fn is_dropped_note(m: &ChatMessage) -> bool {
    m.role == Role::User && m.content.as_deref() == Some(DROPPED_NOTE)
}

fn is_note(m: &ChatMessage) -> bool {
    m.content
        .as_deref()
        .is_some_and(|c| c.starts_with(ELIDED_PREFIX))
}

/// The earlier turns (before `current`), oldest first: each from a question up to the
/// next. Messages before the first question (a restored session's odd start) count as
/// a turn of their own; the dropped-turns note does not count.
fn earlier_turns(history: &[ChatMessage], current: usize) -> Vec<Range<usize>> {
    let skip = usize::from(history.first().is_some_and(is_dropped_note));
    let mut bounds: Vec<usize> = (skip..current)
        .filter(|&i| history[i].role == Role::User)
        .collect();
    if bounds.first() != Some(&skip) && skip < current {
        bounds.insert(0, skip);
    }
    bounds.push(current);
    bounds
        .windows(2)
        .filter(|w| w[0] < w[1])
        .map(|w| w[0]..w[1])
        .collect()
}

/// A turn (as sent) reduced to its question and the first lines of its answer, with
/// the tools it used. `None` for a turn that is already a summary or has no question.
fn summarise(turn: &[ChatMessage]) -> Option<Vec<ChatMessage>> {
    let first = turn.first()?;
    if first.role != Role::User {
        return None;
    }
    let already = turn.len() == 2
        && turn[1].role == Role::Assistant
        && turn[1]
            .content
            .as_deref()
            .is_some_and(|c| c.starts_with(SUMMARY_MARK));
    if already {
        return None;
    }
    let question = cut(
        first.content.as_deref().unwrap_or_default(),
        SUMMARY_QUESTION_BYTES,
    );
    let answer = turn
        .iter()
        .rev()
        .find(|m| {
            m.role == Role::Assistant
                && m.tool_calls.is_empty()
                && m.content.as_deref().is_some_and(|c| !c.trim().is_empty())
        })
        .and_then(|m| m.content.as_deref())
        .map(|a| {
            let lines: Vec<&str> = a
                .lines()
                .map(str::trim_end)
                .filter(|l| !l.trim().is_empty())
                .take(SUMMARY_ANSWER_LINES)
                .collect();
            cut(&lines.join("\n"), SUMMARY_ANSWER_BYTES)
        })
        .unwrap_or_else(|| "(no answer)".to_string());
    let calls: Vec<String> = turn
        .iter()
        .flat_map(|m| m.tool_calls.iter())
        .map(describe_call)
        .collect();
    let mut text = format!("{SUMMARY_MARK} {answer}");
    if !calls.is_empty() {
        let mut shown: Vec<String> = Vec::new();
        for c in &calls {
            if !shown.contains(c) && shown.len() < SUMMARY_TOOLS {
                shown.push(c.clone());
            }
        }
        let more = calls.len() - shown.len();
        text.push_str(&format!("\n(tools used: {}", shown.join("; ")));
        if more > 0 {
            text.push_str(&format!("; and {more} more"));
        }
        text.push(')');
    }
    Some(vec![
        ChatMessage::user(question),
        ChatMessage::assistant(text),
    ])
}

/// The call with id `id` among the tool calls in `before`, latest first.
fn find_call<'a>(before: &'a [ChatMessage], id: &str) -> Option<&'a ToolCall> {
    before
        .iter()
        .rev()
        .filter(|m| m.role == Role::Assistant)
        .flat_map(|m| m.tool_calls.iter())
        .find(|c| c.id == id)
}

/// `get_logs backend-7d9c --previous`, cut short.
fn describe_call(c: &ToolCall) -> String {
    let args: Value = serde_json::from_str(&c.arguments).unwrap_or(Value::Null);
    let s = crate::tools::summarize_args(&c.name, &args);
    if s.chars().count() > CALL_SUMMARY_CHARS {
        let mut short: String = s.chars().take(CALL_SUMMARY_CHARS).collect();
        short.push('…');
        short
    } else {
        s
    }
}

/// `text` cut to at most `max` bytes (on a char boundary), marked when cut.
fn cut(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.len() <= max {
        return text.to_string();
    }
    format!("{}…", &text[..floor_char_boundary(text, max)])
}

/// Bytes `m` takes in the request body (a slight overestimate of the wire form).
pub(super) fn wire_bytes(m: &ChatMessage) -> usize {
    serde_json::to_string(m).map_or(0, |s| s.len())
        + MESSAGE_OVERHEAD_BYTES
        + m.tool_calls.len() * WRAPPER_OVERHEAD_BYTES
}

/// The largest char boundary of `s` at or below `at`.
fn floor_char_boundary(s: &str, at: usize) -> usize {
    let mut i = at.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn same(m: &ChatMessage) -> ChatMessage {
        m.clone()
    }

    fn call(id: &str, name: &str, args: &str) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: name.into(),
            arguments: args.into(),
        }
    }

    fn sent(messages: &[ChatMessage]) -> usize {
        messages.iter().map(wire_bytes).sum::<usize>() + REQUEST_OVERHEAD_BYTES
    }

    /// One turn: a question, a tool call with a large output, an answer.
    fn turn(i: usize, output_bytes: usize) -> Vec<ChatMessage> {
        let id = format!("c{i}");
        vec![
            ChatMessage::user(format!("question {i}: why is backend-{i} failing?")),
            ChatMessage::assistant_tool_calls(
                None,
                vec![call(
                    &id,
                    "get_logs",
                    &format!(r#"{{"name":"backend-{i}"}}"#),
                )],
            ),
            ChatMessage::tool_result(
                &id,
                format!("log line of turn {i}\n").repeat(output_bytes / 20),
            ),
            ChatMessage::assistant(format!(
                "answer {i}: the database password is wrong.\nsecond line\nthird line\nfourth line"
            )),
        ]
    }

    #[test]
    fn old_tool_output_is_elided_first_with_a_note_naming_the_call() {
        let mut history: Vec<ChatMessage> = Vec::new();
        history.extend(turn(1, 8_000));
        history.extend(turn(2, 8_000));
        history.push(ChatMessage::user("question 3"));
        let system = ChatMessage::system("sys");
        let full = sent(&history) + wire_bytes(&system);
        // Room for everything but about one tool output.
        let budget = full - 4_000;
        let fitted = fit(&mut history, system, &[], budget, same).unwrap();
        assert!(fitted.bytes <= budget);
        // Turn 1's output (the oldest) went; turn 2's is whole; no turn was summarised.
        let note = history[2].content.as_deref().unwrap();
        assert!(note.starts_with(ELIDED_PREFIX), "{note}");
        assert!(
            note.contains("get_logs backend-1") || note.contains("get_logs"),
            "{note}"
        );
        assert!(
            note.contains("tokens); call the tool again if needed]"),
            "{note}"
        );
        assert!(history[6]
            .content
            .as_deref()
            .unwrap()
            .starts_with("log line of turn 2"));
        assert_eq!(
            history[3].content.as_deref().unwrap().lines().count(),
            4,
            "answers kept whole"
        );
        let report = ContextReport::of_history(&history);
        assert_eq!((report.elided_outputs, report.summarised_turns), (1, 0));
        assert!(!report.dropped_turns);
    }

    #[test]
    fn then_earlier_turns_are_summarised_and_the_current_turn_is_never_dropped() {
        let mut history: Vec<ChatMessage> = Vec::new();
        for i in 1..=6 {
            history.extend(turn(i, 2_000));
        }
        // The current turn: its question and its latest step's (large) results.
        history.push(ChatMessage::user("the latest question"));
        history.push(ChatMessage::assistant_tool_calls(
            None,
            vec![call("now", "describe", r#"{"kind":"Pod","name":"web"}"#)],
        ));
        history.push(ChatMessage::tool_result(
            "now",
            "current evidence ".repeat(200),
        ));
        let system = ChatMessage::system("the system prompt");
        let budget = 6_000;
        let fitted = fit(&mut history, system, &[], budget, same).unwrap();
        assert!(fitted.bytes <= budget, "{}", fitted.bytes);
        assert_eq!(
            fitted.messages[0].content.as_deref(),
            Some("the system prompt")
        );
        let n = fitted.messages.len();
        assert_eq!(
            fitted.messages[n - 3].content.as_deref(),
            Some("the latest question")
        );
        assert_eq!(
            fitted.messages[n - 1].content.as_deref(),
            Some("current evidence ".repeat(200).as_str()),
            "the current step's result is whole"
        );
        let report = ContextReport::of_history(&history);
        assert!(report.summarised_turns > 0, "{report:?}");
        let summary = history
            .iter()
            .find(|m| {
                m.content
                    .as_deref()
                    .is_some_and(|c| c.starts_with(SUMMARY_MARK))
            })
            .unwrap();
        let text = summary.content.as_deref().unwrap();
        assert!(
            text.contains("answer") && text.contains("(tools used: get_logs"),
            "{text}"
        );
        assert!(
            !text.contains("fourth line"),
            "only the first lines: {text}"
        );
        // The result is still a valid conversation: every tool result follows its call.
        assert_eq!(crate::agent::state::restorable(history.clone()), history);
    }

    #[test]
    fn a_two_hundred_turn_session_stays_within_the_window() {
        let window = 16_000u64;
        let budget_tokens = budget_for_window(window);
        let budget = kai_text::budget::bytes_for_tokens(budget_tokens);
        let system = ChatMessage::system("s".repeat(2_000));
        let tools = vec![ToolSpec {
            name: "get_logs".into(),
            description: "logs".into(),
            parameters: serde_json::json!({"type": "object"}),
        }];
        let mut history: Vec<ChatMessage> = Vec::new();
        for i in 0..200 {
            let t = turn(i, 3_000 + (i % 7) * 500);
            // The question, then a request; the tool result, then a request; the answer.
            history.push(t[0].clone());
            history.push(t[1].clone());
            history.push(t[2].clone());
            let fitted = fit(&mut history, system.clone(), &tools, budget, same)
                .unwrap_or_else(|b| panic!("turn {i}: {b} bytes over {budget}"));
            assert!(fitted.bytes <= budget, "turn {i}");
            let json = serde_json::to_string(&fitted.messages).unwrap()
                + &serde_json::to_string(&tools).unwrap();
            assert!(
                kai_text::budget::estimate_tokens(&json) <= budget_tokens,
                "turn {i}: the request as sent is over the budget"
            );
            assert!(fitted.bytes / 4 < window as usize);
            assert!(
                json.contains(&format!("question {i}: why is backend-{i}")),
                "turn {i}"
            );
            assert!(json.contains(&format!("log line of turn {i}")), "turn {i}");
            history.push(t[3].clone());
        }
        let report = ContextReport::of_history(&history);
        assert!(report.dropped_turns, "{report:?}");
        // 200 whole turns would be 800 messages; most are summaries (2) or gone.
        assert!(
            history.len() < 400,
            "the history is bounded: {}",
            history.len()
        );
        assert_eq!(crate::agent::state::restorable(history.clone()), history);
    }

    #[test]
    fn the_budget_leaves_room_for_the_answer() {
        assert_eq!(budget_for_window(128_000), 128_000 - 16_384);
        assert_eq!(budget_for_window(8_192), 8_192 - 2_048);
        assert_eq!(budget_for_window(100), 1_024, "never absurdly small");
    }
}
