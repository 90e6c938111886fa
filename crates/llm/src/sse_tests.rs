//! Framing on its own, and framing plus the assembler as the client drives them; bodies
//! are cut into pieces the way reads cut them. No server.

use super::*;
use crate::stream::Assembler;
use crate::ChatResponse;
use futures::executor::block_on;
use std::convert::Infallible;

fn pieces_of(body: &[u8], width: usize) -> Vec<Result<Bytes, Infallible>> {
    body.chunks(width.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect()
}

fn collect<E: std::error::Error>(items: Vec<Result<Bytes, E>>) -> Vec<Result<Event, Failure>> {
    block_on(events(stream::iter(items)).collect::<Vec<_>>())
}

/// The `data` of every event of `body` read in `width`-byte pieces.
fn datas(body: &str, width: usize) -> Result<Vec<String>, Failure> {
    collect(pieces_of(body.as_bytes(), width))
        .into_iter()
        .filter_map(|e| e.map(|e| e.data).transpose())
        .collect()
}

/// Events into the assembler as `OpenAiClient` does: text out as it comes, stop at
/// `[DONE]`, the first failure ends the answer.
fn assemble_pieces(
    pieces: Vec<Result<Bytes, Infallible>>,
) -> (Result<ChatResponse, Failure>, Vec<String>) {
    let mut a = Assembler::default();
    let mut texts = Vec::new();
    let mut events = Box::pin(events(stream::iter(pieces)));
    let result = block_on(async {
        while let Some(event) = events.next().await {
            let event = event?;
            if let Some(t) = a.push_event(event.event.as_deref(), event.data.as_deref())? {
                texts.push(t);
            }
            if a.is_done() {
                break;
            }
        }
        Ok(())
    });
    (result.and_then(|()| a.finish()), texts)
}

fn assemble(body: &str) -> (Result<ChatResponse, Failure>, Vec<String>) {
    assemble_pieces(pieces_of(body.as_bytes(), body.len()))
}

fn content_chunk(s: &str) -> String {
    format!(
        "data: {}\n\n",
        serde_json::json!({"choices":[{"index":0,"delta":{"content":s},"finish_reason":null}]})
    )
}

#[test]
fn text_deltas_are_joined_and_emitted_one_by_one() {
    let body = [
        content_chunk("Hel"),
        content_chunk("lo wor"),
        content_chunk("ld"),
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n".into(),
    ]
    .concat();
    // Lines split across reads at every width.
    for width in 1..=9 {
        let (r, texts) = assemble_pieces(pieces_of(body.as_bytes(), width));
        let r = r.unwrap();
        assert_eq!(r.content, "Hello world");
        assert_eq!(texts, vec!["Hel", "lo wor", "ld"], "width {width}");
        assert_eq!(r.finish_reason.as_deref(), Some("stop"));
        assert!(r.tool_calls.is_empty());
    }
}

#[test]
fn utf8_split_across_reads_survives() {
    let body = content_chunk("héllo ✓ 日本 🚀");
    for width in 1..=8 {
        let (r, _) = assemble_pieces(pieces_of(body.as_bytes(), width));
        assert_eq!(r.unwrap().content, "héllo ✓ 日本 🚀", "width {width}");
    }
    // Tool-call arguments with multi-byte characters, cut mid-character by the reads.
    let body = "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"m\\\":\\\"✓\"}}]}}]}\n\n\
                data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"日\\\"}\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\n";
    for width in 1..=5 {
        let (r, _) = assemble_pieces(pieces_of(body.as_bytes(), width));
        assert_eq!(r.unwrap().tool_calls[0].arguments, "{\"m\":\"✓日\"}");
    }
}

#[test]
fn quirks_comments_events_no_finish_reason_no_done() {
    let body = ": keep-alive\nevent: message\nid: 1\ndata:{\"id\":\"x\",\"choices\":[{\"delta\":{\"content\":\"ok\"}}],\"extra\":{\"a\":1}}\r\n\r\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":null},\"finish_reason\":\"\"}]}\n\n";
    for width in [1, 2, 3, body.len()] {
        let (r, texts) = assemble_pieces(pieces_of(body.as_bytes(), width));
        let r = r.unwrap();
        assert_eq!(r.content, "ok");
        assert_eq!(texts, ["ok"]);
        assert_eq!(r.finish_reason, None);
    }
}

#[test]
fn a_last_event_without_a_blank_line_is_read() {
    // Ends after one newline, or after none: the server still meant the event.
    for body in [
        "data: {\"choices\":[{\"delta\":{\"content\":\"tail\"}}]}\n",
        "data: {\"choices\":[{\"delta\":{\"content\":\"tail\"}}]}",
        "data: {\"choices\":[{\"delta\":{\"content\":\"tail\"}}]}\r",
    ] {
        assert_eq!(assemble(body).0.unwrap().content, "tail", "{body:?}");
    }
    // A tool call cut mid-arguments that way is a broken stream, not a missing one.
    let cut = "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"function\":{\"name\":\"get_pod\",\"arguments\":\"{\\\"name\\\": \\\"we\"}}]}}]}\n";
    let (r, _) = assemble(cut);
    assert!(
        matches!(&r, Err(Failure::Stream(m)) if m.contains("middle of the get_pod tool call")),
        "{r:?}"
    );
}

#[test]
fn nothing_is_read_after_done() {
    let body = format!("{}data: [DONE]\n\ndata: {{not json\n\n", content_chunk("a"));
    assert_eq!(assemble(&body).0.unwrap().content, "a");
}

#[test]
fn keep_alives_and_metadata_carry_no_data() {
    for beat in [
        ": keep-alive\n\n",
        "\n\n\n",
        "event: ping\n\n",
        "id: 7\nretry: 10\n\n",
        ":\r\n\r\n",
    ] {
        assert_eq!(datas(beat, 1), Ok(vec![]), "{beat:?}");
        assert_eq!(datas(beat, 64), Ok(vec![]), "{beat:?}");
    }
    assert_eq!(datas("data: \n\n", 3), Ok(vec![String::new()]));
    assert_eq!(
        datas("data: a\ndata:b\n\n", 2),
        Ok(vec!["a\nb".to_string()]),
        "multi-line data is joined with \\n"
    );
    let (r, _) = assemble(": only keep-alives\n\n: and more\n\n");
    assert!(matches!(r, Err(Failure::Bad(m)) if m.contains("no stream chunks")));
}

#[test]
fn garbage_is_a_bad_response() {
    let (r, _) = assemble("<!DOCTYPE html>\n<html><body>Login</body></html>\n");
    assert!(matches!(r, Err(Failure::Bad(m)) if m.contains("DOCTYPE")));
    // Without a newline, and split in pieces.
    let r = collect(pieces_of(
        b"<html><title>Sign in to the proxy</title></html>",
        4,
    ));
    assert!(
        matches!(r.last(), Some(Err(Failure::Bad(m))) if m.contains("Sign in to the proxy")),
        "{r:?}"
    );
    let (r, _) = assemble("Internal Server Error");
    assert!(matches!(r, Err(Failure::Bad(m)) if m.contains("expected an event stream")));
    let (r, _) = assemble("data: {not json\n\n");
    assert!(matches!(r, Err(Failure::Bad(m)) if m.contains("not valid JSON")));
    let (r, _) = assemble("");
    assert!(matches!(r, Err(Failure::Bad(_))));
    let (r, _) = assemble("data: [DONE]\n\n");
    assert_eq!(
        r.unwrap(),
        ChatResponse::default(),
        "an empty but finished answer is fine"
    );
    // After data, unknown fields are ignored as the spec says; a BOM is no field.
    let body = format!("\u{feff}retry: 5\n{}x-extra: 1\n\n", content_chunk("ok"));
    assert_eq!(assemble(&body).0.unwrap().content, "ok");
}

#[test]
fn error_events_in_stream() {
    let (r, _) = assemble("data: {\"error\":{\"message\":\"overloaded\",\"code\":503}}\n\n");
    assert_eq!(r, Err(Failure::InStream("overloaded".into())));
    let (r, texts) = assemble(&format!(
        "{}event: error\ndata: {{\"message\":\"model crashed\"}}\n\n",
        content_chunk("Half")
    ));
    assert_eq!(r, Err(Failure::InStream("model crashed".into())));
    assert_eq!(texts, ["Half"]);
    let (r, _) = assemble("event: error\ndata: upstream went away\n\n");
    assert_eq!(r, Err(Failure::InStream("upstream went away".into())));
}

#[test]
fn invalid_utf8_is_a_bad_response() {
    let r = collect(pieces_of(
        b"data: {\"choices\":[{\"delta\":{\"content\":\"\xff\"}}]}\n\n",
        5,
    ));
    assert!(
        matches!(r.last(), Some(Err(Failure::Bad(m))) if m.contains("UTF-8")),
        "{r:?}"
    );
}

#[test]
fn a_broken_body_is_a_stream_failure() {
    let items = vec![
        Ok(Bytes::from(content_chunk("a"))),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "reset by peer",
        )),
        Ok(Bytes::from(content_chunk("never"))),
    ];
    let r = collect(items);
    assert_eq!(r.len(), 2, "{r:?}");
    assert!(r[0].is_ok());
    assert!(
        matches!(&r[1], Err(Failure::Stream(m)) if m.contains("reset by peer")),
        "{r:?}"
    );
}

#[test]
fn events_and_lines_are_bounded() {
    let mib = vec![b'x'; 1024 * 1024];
    // One endless line.
    let mut items: Vec<Result<Bytes, Infallible>> = vec![Ok(Bytes::from_static(b"data: "))];
    items.extend((0..=MAX_EVENT_BYTES / mib.len()).map(|_| Ok(Bytes::from(mib.clone()))));
    let r = collect(items);
    assert!(
        matches!(r.last(), Some(Err(Failure::Bad(m))) if m.contains("without an event boundary")),
        "{:?}",
        r.last().map(|e| e.as_ref().map(|_| ()))
    );
    // Endless short data lines that never end an event.
    let line = format!("data: {}\n", "y".repeat(64 * 1024 - 7));
    let items: Vec<Result<Bytes, Infallible>> = (0..=MAX_EVENT_BYTES / line.len())
        .map(|_| Ok(Bytes::from(line.clone())))
        .collect();
    let r = collect(items);
    assert!(matches!(r.last(), Some(Err(Failure::Bad(_)))));
    // Many large events, each under the bound, are fine: the count restarts per event.
    let event = format!("data: {}\r\n\r\n", "z".repeat(1024 * 1024));
    let items: Vec<Result<Bytes, Infallible>> = (0..=MAX_EVENT_BYTES / event.len() + 2)
        .map(|_| Ok(Bytes::from(event.clone())))
        .collect();
    let r = collect(items);
    assert!(r.iter().all(Result::is_ok));
    assert_eq!(r.len(), MAX_EVENT_BYTES / event.len() + 3);
}
