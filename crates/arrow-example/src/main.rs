//! Arrow record batches through a shmchan message channel: each message is one Arrow IPC
//! stream (a schema, one record batch, the end marker), which pyarrow writes and reads as
//! well (`pyarrow.ipc.new_stream`, `pyarrow.ipc.open_stream`).
//!
//! ```text
//! cargo run --release -p shmchan-arrow-example -- write NAME COUNT   # COUNT batches, then closes
//! cargo run --release -p shmchan-arrow-example -- read NAME COUNT    # reads and checks them
//! ```
//!
//! Batch `k` has `1 + k mod 100` rows, numbered from `100 k`: row `i` has `i: Int64 = i`,
//! `x: Float64 = i / 4`, and `name: Utf8 = "row-i"`, null when `i mod 7 = 0`. The writer
//! writes each stream in place, into room reserved in the ring; the reader decodes each
//! from the message in place, then consumes it. Both print `ready` once they hold their
//! end; the reader prints `read K batches R rows` when the stream ends. The Python package's
//! tests (`crates/shmchan-py/tests/test_arrow.py`) run it against pyarrow.

use std::io::Cursor;
use std::sync::Arc;

use arrow_array::{Array, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{DataType, Field, Schema};
use shmchan::{ErrorKind, MessageChannel, Options};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("i", DataType::Int64, false),
        Field::new("x", DataType::Float64, false),
        Field::new("name", DataType::Utf8, true),
    ]))
}

/// Batch `k`.
fn batch(k: u64) -> Res<RecordBatch> {
    let first = 100 * k as i64;
    let rows: Vec<i64> = (first..first + 1 + (k % 100) as i64).collect();
    let names: StringArray = rows
        .iter()
        .map(|i| (i % 7 != 0).then(|| format!("row-{i}")))
        .collect();
    Ok(RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from(rows.clone())),
            Arc::new(Float64Array::from_iter_values(
                rows.iter().map(|&i| i as f64 / 4.0),
            )),
            Arc::new(names),
        ],
    )?)
}

/// `batch` as one Arrow IPC stream, written into `out`; the bytes it takes.
fn write_stream(out: &mut [u8], batch: &RecordBatch) -> Res<usize> {
    let mut cursor = Cursor::new(out);
    let mut w = StreamWriter::try_new(&mut cursor, &batch.schema())?;
    w.write(batch)?;
    w.finish()?;
    drop(w);
    Ok(cursor.position() as usize)
}

fn write(name: &str, count: u64) -> Res<()> {
    let chan = MessageChannel::create_or_open(name, Options::new().capacity(1 << 18))?;
    let mut w = chan.writer()?;
    println!("ready");
    for k in 0..count {
        let b = batch(k)?;
        // Room for the stream: its buffers, padded, and the schema and batch headers.
        let room = 2 * b.get_array_memory_size() + 4096;
        let mut slot = w.blocking_reserve(room)?;
        let len = write_stream(&mut slot, &b)?;
        slot.commit_len(len);
    }
    w.close();
    Ok(())
}

fn read(name: &str, count: u64) -> Res<()> {
    let chan = MessageChannel::create_or_open(name, Options::new().capacity(1 << 18))?;
    let mut r = chan.reader()?;
    println!("ready");
    let (mut batches, mut rows) = (0u64, 0usize);
    loop {
        let m = match r.blocking_peek() {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::Closed => break,
            Err(e) => return Err(e.into()),
        };
        // Decoded from the message in place; the batch's buffers are copies of its own.
        let mut got = Vec::new();
        for b in StreamReader::try_new(Cursor::new(&*m), None)? {
            got.push(b?);
        }
        m.consume();
        let [b] = &got[..] else {
            return Err(format!("message {batches}: {} batches, not 1", got.len()).into());
        };
        if *b != batch(batches)? {
            return Err(format!("batch {batches} differs: {b:?}").into());
        }
        rows += b.num_rows();
        batches += 1;
    }
    println!("read {batches} batches {rows} rows");
    if batches != count {
        return Err(format!("read {batches} batches, expected {count}").into());
    }
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: arrow_ipc write|read NAME COUNT";
    let (Some(role), Some(name), Some(count)) = (args.first(), args.get(1), args.get(2)) else {
        return Err(usage.into());
    };
    let count: u64 = count.parse()?;
    // The nulls are part of what is checked: a batch's `name` column has them.
    debug_assert!(batch(0)?.column(2).null_count() == 1);
    match role.as_str() {
        "write" => write(name, count),
        "read" => read(name, count),
        _ => Err(usage.into()),
    }
}
