//! What `ls` and `inspect` print: the JSON records (one shape for both), the `ls` table,
//! the text of `inspect`, and the one-word state of a channel (which `gc` uses too).

use std::io::{self, Write};
use std::time::{Duration, UNIX_EPOCH};

use shmchan::{Barrier, ChannelInfo, EndInfo, Error, Primitive, WriterState};

use crate::fail::Fail;

/// `s` safe to print on a terminal: control characters (C0, DEL, C1: among them ESC, which
/// starts a terminal escape sequence) and the invisible characters that reorder or hide text
/// (bidirectional controls, zero-width marks) are written as Rust escapes (`\u{1b}`); a
/// backslash is doubled so that an escape cannot be faked. Text that came from a segment
/// (names, schema tags, abort reasons) goes through here before it is printed.
pub(crate) fn escape(s: &str) -> String {
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
    };
    if !s.chars().any(|c| hidden(c) || c == '\\') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if hidden(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// One end of a channel: how often it was claimed, by whom last, and whether it is held.
#[derive(serde::Serialize)]
pub(crate) struct EndJson {
    claims: u64,
    pid: Option<u32>,
    alive: bool,
}

/// One entry of `ls --json`, and the output of `inspect --json`.
#[derive(serde::Serialize)]
pub(crate) struct InfoJson {
    name: String,
    ok: bool,
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<DetailJson>,
}

/// A readable channel's header, in JSON.
#[derive(serde::Serialize)]
pub(crate) struct DetailJson {
    path: String,
    owner_uid: u32,
    mode: String,
    version: u32,
    /// A primitive's name, "message" for a message channel, null for a record.
    elem_type: Option<&'static str>,
    /// A message channel: `capacity`, `tail`, `head` and `len` count its 8-byte words.
    messages: bool,
    /// A message channel's whole messages (a snapshot; null if not counted).
    message_count: Option<u64>,
    elem_size: u32,
    elem_align: u32,
    /// The element's description (the NPY format's `descr`), if the channel records one.
    descr: Option<String>,
    schema: Option<String>,
    capacity: u64,
    header_len: u32,
    data_len: u64,
    persist: bool,
    /// "fence" or "membarrier".
    barrier: &'static str,
    creator_pid: u32,
    /// Seconds since the Unix epoch (nanoseconds would exceed JSON's exact integers).
    created_unix: f64,
    tail: u64,
    head: u64,
    len: u64,
    writer: EndJson,
    reader: EndJson,
    writer_state: &'static str,
    abort_reason: Option<String>,
    reader_closed: bool,
    in_use: bool,
    state: &'static str,
}

/// One end (writer or reader) in JSON.
fn end_json(e: &EndInfo) -> EndJson {
    EndJson {
        claims: e.claims,
        pid: e.pid,
        alive: e.held,
    }
}

/// One word for a channel's state.
pub(crate) fn state_word(i: &ChannelInfo) -> &'static str {
    i.state().as_str()
}

/// Everything the header says, as `inspect --json` prints it (and the text of `inspect`).
fn detail(i: &ChannelInfo) -> DetailJson {
    DetailJson {
        path: i.dir.display().to_string(),
        owner_uid: i.owner_uid,
        mode: format!("{:04o}", i.mode),
        version: i.version,
        elem_type: if i.messages {
            Some("message")
        } else {
            i.elem_type.map(Primitive::name)
        },
        messages: i.messages,
        message_count: i.message_count,
        elem_size: i.elem_size,
        elem_align: i.elem_align,
        descr: i.descr.clone(),
        schema: i.schema.clone(),
        capacity: i.capacity,
        header_len: i.header_len,
        data_len: i.data_len,
        persist: i.persist,
        barrier: if i.barrier == Barrier::Membarrier {
            "membarrier"
        } else {
            "fence"
        },
        creator_pid: i.creator_pid,
        created_unix: i.created_unix_ns as f64 / 1e9,
        tail: i.tail,
        head: i.head,
        len: i.len(),
        writer: end_json(&i.writer),
        reader: end_json(&i.reader),
        writer_state: match i.writer_state {
            WriterState::Open => "open",
            WriterState::Closed => "closed",
            WriterState::Aborted(_) => "aborted",
        },
        abort_reason: match &i.writer_state {
            WriterState::Aborted(r) => Some(r.clone()),
            _ => None,
        },
        reader_closed: i.reader_closed,
        in_use: i.in_use,
        state: state_word(i),
    }
}

/// One channel in JSON: its detail, or why it could not be read.
pub(crate) fn to_json(name: &str, r: &Result<ChannelInfo, Error>) -> InfoJson {
    match r {
        Ok(i) => InfoJson {
            name: name.to_string(),
            ok: true,
            error: None,
            detail: Some(detail(i)),
        },
        Err(e) => InfoJson {
            name: name.to_string(),
            ok: false,
            error: Some(e.to_string()),
            detail: None,
        },
    }
}

/// The `TYPE` cell of the `ls` table: a primitive's name, a record's description (its first
/// [`TYPE_WIDTH`] characters, escaped), or for a record without one its size (`24B`).
fn type_cell(i: &ChannelInfo) -> String {
    if i.messages {
        return "message".to_string();
    }
    match (i.elem_type, &i.descr) {
        (Some(p), _) => p.name().to_string(),
        (None, Some(d)) if d.chars().count() <= TYPE_WIDTH => escape(d),
        (None, Some(d)) => {
            let head: String = d.chars().take(TYPE_WIDTH - 1).collect();
            format!("{}…", escape(&head))
        }
        (None, None) => format!("{}B", i.elem_size),
    }
}

/// Characters of a description the `ls` table shows.
const TYPE_WIDTH: usize = 16;

/// One end in a cell of the `ls` table: "PID alive", "PID gone" or "-".
fn end_cell(e: &EndInfo) -> String {
    match (e.pid, e.held) {
        (_, true) => format!("{} alive", e.pid.unwrap_or(0)),
        (Some(p), false) => format!("{p} gone"),
        (None, false) => "-".to_string(),
    }
}

/// Prints `v` as pretty JSON on stdout.
pub(crate) fn print_json(v: &impl serde::Serialize) -> Result<(), Fail> {
    println!(
        "{}",
        serde_json::to_string_pretty(v).map_err(Fail::channel)?
    );
    Ok(())
}

/// The `ls` table: a head line, then one line per channel; stops quietly if stdout closes.
pub(crate) fn print_table(all: &[(String, Result<ChannelInfo, Error>)]) {
    let mut out = io::stdout().lock();
    let _ = writeln!(
        out,
        "{:<24} {:>16} {:>12} {:>12} {:>14} {:>14} {:<13}",
        "NAME", "TYPE", "CAPACITY", "FILL", "WRITER", "READER", "STATE"
    );
    for (name, r) in all {
        let line = match r {
            Ok(i) => format!(
                "{:<24} {:>16} {:>12} {:>12} {:>14} {:>14} {:<13}",
                escape(name),
                type_cell(i),
                if i.messages {
                    format!("{}B", i.capacity * 8)
                } else {
                    i.capacity.to_string()
                },
                format!(
                    "{} ({}%)",
                    match (i.messages, i.message_count) {
                        (false, _) => i.len().to_string(),
                        (true, Some(n)) => n.to_string(),
                        (true, None) => "?".to_string(),
                    },
                    i.len() * 100 / i.capacity.max(1)
                ),
                end_cell(&i.writer),
                end_cell(&i.reader),
                state_word(i),
            ),
            Err(e) => format!(
                "{:<24} unreadable: {}",
                escape(name),
                escape(&e.to_string())
            ),
        };
        if writeln!(out, "{line}").is_err() {
            break;
        }
    }
}

/// The text of `inspect`: one line per field of the header.
pub(crate) fn print_detail(i: &ChannelInfo) {
    let d = detail(i);
    let created = UNIX_EPOCH + Duration::from_nanos(i.created_unix_ns);
    let age = created.elapsed().map(|a| a.as_secs()).unwrap_or(0);
    let end = |e: &EndJson| match (e.pid, e.alive) {
        (Some(p), true) => format!("pid {p}, alive ({} claims)", e.claims),
        (Some(p), false) => format!("pid {p}, not held ({} claims)", e.claims),
        (None, _) => "never claimed".to_string(),
    };
    println!("channel      {}", escape(&i.name));
    println!("path         {}", escape(&d.path));
    println!("owner        uid {}, mode {}", d.owner_uid, d.mode);
    println!("layout       version {}", d.version);
    if d.messages {
        println!("elements     messages, framed in 8-byte words");
    } else {
        println!(
            "elements     {} ({} bytes, aligned to {})",
            d.elem_type.unwrap_or("application type"),
            d.elem_size,
            d.elem_align
        );
    }
    println!(
        "descr        {}",
        d.descr.as_deref().map_or_else(|| "-".to_string(), escape)
    );
    println!(
        "schema       {}",
        d.schema.as_deref().map_or_else(|| "-".to_string(), escape)
    );
    println!(
        "ring         {} elements, {} bytes after a {}-byte header",
        d.capacity, d.data_len, d.header_len
    );
    if d.messages {
        println!(
            "fill         {} messages in {} bytes (words committed {}, consumed {})",
            d.message_count
                .map_or_else(|| "?".to_string(), |n| n.to_string()),
            d.len * 8,
            d.tail,
            d.head
        );
    } else {
        println!(
            "fill         {} items (committed {}, consumed {})",
            d.len, d.tail, d.head
        );
    }
    println!("writer       {}, {}", end(&d.writer), d.writer_state);
    if let Some(r) = &d.abort_reason {
        println!("abort reason {}", escape(r));
    }
    println!(
        "reader       {}, {}",
        end(&d.reader),
        if d.reader_closed { "closed" } else { "open" }
    );
    println!("in use       {}", if d.in_use { "yes" } else { "no" });
    println!("persist      {}", if d.persist { "yes" } else { "no" });
    println!("barrier      {}", d.barrier);
    println!("created      by pid {}, {age} s ago", d.creator_pid);
    println!("state        {}", d.state);
}
