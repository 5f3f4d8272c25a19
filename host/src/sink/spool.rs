//! A sink's disk spool: where its messages wait, in order, while the broker
//! stays down, surviving a restart of the process.
//!
//! Segment files `NNNNNNNNNNNNNNNNNNNN.spool` hold one JSON record per line
//! (the message id, subject, severity, cluster and the encoded event);
//! `cursor` says how far the oldest segment has been delivered (written
//! atomically). Every append is fsynced before it returns — only then is a
//! checkpoint allowed past it. A line torn by a crash is dropped at open:
//! its append never returned, so its checkpoint never moved.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{Batch, Record};
use crate::event::Severity;

/// A segment is closed for appends at this size.
const SEGMENT_BYTES: u64 = 16 << 20;

#[derive(Serialize, Deserialize)]
struct Line<'a> {
    id: &'a str,
    subject: &'a str,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    key: Option<Cow<'a, str>>,
    severity: Severity,
    cluster: &'a str,
    #[serde(borrow)]
    event: &'a RawValue,
}

#[derive(Debug)]
struct Segment {
    index: u64,
    len: u64,
}

/// Where delivery stands: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    segment: u64,
    offset: u64,
}

/// An open spool directory.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segments: VecDeque<Segment>,
    read: Position,
    writer: Option<File>,
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, holding at most `max_bytes`
    /// undelivered.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let mut indices: Vec<u64> = fs::read_dir(dir)?
            .filter_map(|entry| {
                let name = entry.ok()?.file_name();
                name.to_str()?.strip_suffix(".spool")?.parse().ok()
            })
            .collect();
        indices.sort_unstable();
        let mut segments = VecDeque::new();
        for index in indices {
            let path = segment_path(dir, index);
            let len = valid_length(&path)?;
            if len < fs::metadata(&path)?.len() {
                // A torn last line: its append never completed.
                OpenOptions::new().write(true).open(&path)?.set_len(len)?;
            }
            segments.push_back(Segment { index, len });
        }
        let read = match fs::read_to_string(dir.join("cursor")) {
            Ok(text) => {
                let mut parts = text.split_whitespace().map(str::parse::<u64>);
                match (parts.next(), parts.next()) {
                    (Some(Ok(segment)), Some(Ok(offset))) => Position { segment, offset },
                    _ => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("{}: not a spool cursor", dir.join("cursor").display()),
                        ));
                    }
                }
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => Position {
                segment: segments.front().map_or(0, |s| s.index),
                offset: 0,
            },
            Err(error) => return Err(error),
        };
        let read = if segments.is_empty() {
            Position {
                segment: read.segment,
                offset: 0,
            }
        } else {
            read
        };
        let mut spool = Self {
            dir: dir.to_owned(),
            max_bytes,
            segments,
            read,
            writer: None,
        };
        spool.forget_delivered()?;
        Ok(spool)
    }

    /// Bytes appended and not yet delivered.
    pub fn pending_bytes(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| {
                if s.index == self.read.segment {
                    s.len.saturating_sub(self.read.offset)
                } else if s.index > self.read.segment {
                    s.len
                } else {
                    0
                }
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.pending_bytes() == 0
    }

    /// Whether `bytes` more fit under the size bound.
    pub fn has_room(&self, bytes: u64) -> bool {
        self.pending_bytes() + bytes <= self.max_bytes
    }

    /// Appends the records `which` of `batch` and syncs them to disk.
    pub fn append(&mut self, batch: &Batch, which: &[usize]) -> io::Result<()> {
        let mut text = Vec::new();
        for &i in which {
            let record = &batch.records[i];
            let line = batch.line(record);
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            let event: &RawValue = serde_json::from_slice(line).map_err(io::Error::other)?;
            serde_json::to_writer(
                &mut text,
                &Line {
                    id: &record.id,
                    subject: &record.subject,
                    key: record.key.as_deref().map(Cow::Borrowed),
                    severity: record.severity,
                    cluster: &record.cluster,
                    event,
                },
            )
            .map_err(io::Error::other)?;
            text.push(b'\n');
        }
        let needs_segment = self
            .segments
            .back()
            .is_none_or(|s| s.len >= SEGMENT_BYTES || self.writer.is_none());
        if needs_segment {
            let index = match self.segments.back() {
                Some(last) if last.len < SEGMENT_BYTES => last.index,
                Some(last) => last.index + 1,
                None => self.read.segment.max(1),
            };
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(segment_path(&self.dir, index))?;
            if self.segments.back().is_none_or(|s| s.index != index) {
                self.segments.push_back(Segment { index, len: 0 });
                sync_dir(&self.dir)?;
            }
            self.writer = Some(file);
        }
        let writer = self.writer.as_mut().expect("opened above");
        writer.write_all(&text)?;
        writer.sync_data()?;
        self.segments.back_mut().expect("a segment").len += text.len() as u64;
        Ok(())
    }

    /// Reads up to `max` of the oldest undelivered records as a batch, and
    /// the position just past them (for [`commit`](Self::commit)).
    pub fn peek(&self, max: usize) -> io::Result<(Batch, Position)> {
        let mut batch = Batch::default();
        let mut position = self.read;
        for segment in self
            .segments
            .iter()
            .filter(|s| s.index >= self.read.segment)
        {
            if segment.index > position.segment {
                position = Position {
                    segment: segment.index,
                    offset: 0,
                };
            }
            let mut file = File::open(segment_path(&self.dir, segment.index))?;
            file.seek(SeekFrom::Start(position.offset))?;
            let mut reader = BufReader::new(file).take(segment.len - position.offset);
            let mut text = String::new();
            while batch.records.len() < max {
                text.clear();
                let n = reader.read_line(&mut text)?;
                if n == 0 {
                    break;
                }
                position.offset += n as u64;
                let line: Line = serde_json::from_str(&text).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("spool segment {}: {e}", segment.index),
                    )
                })?;
                let start = batch.bytes.len();
                batch.bytes.extend_from_slice(line.event.get().as_bytes());
                batch.bytes.push(b'\n');
                batch.events += 1;
                batch.records.push(Record {
                    start,
                    end: batch.bytes.len(),
                    id: line.id.to_owned(),
                    subject: line.subject.to_owned(),
                    key: line.key.map(Cow::into_owned),
                    severity: line.severity,
                    cluster: line.cluster.to_owned(),
                });
            }
            if batch.records.len() >= max {
                break;
            }
        }
        Ok((batch, position))
    }

    /// Marks everything before `position` delivered.
    pub fn commit(&mut self, position: Position) -> io::Result<()> {
        self.read = position;
        let cursor = format!("{} {}", position.segment, position.offset);
        crate::paths::write_atomically(&self.dir.join("cursor"), cursor.as_bytes())?;
        self.forget_delivered()
    }

    /// Deletes segments delivered to the end (but keeps the one appended to).
    fn forget_delivered(&mut self) -> io::Result<()> {
        while let Some(first) = self.segments.front() {
            let done = first.index < self.read.segment
                || (first.index == self.read.segment
                    && self.read.offset >= first.len
                    && self.segments.len() > 1);
            if !done {
                break;
            }
            fs::remove_file(segment_path(&self.dir, first.index))?;
            self.segments.pop_front();
        }
        if let Some(first) = self.segments.front()
            && first.index > self.read.segment
        {
            self.read = Position {
                segment: first.index,
                offset: 0,
            };
        }
        Ok(())
    }
}

fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{index:020}.spool"))
}

/// The length of the complete lines at the start of a segment.
fn valid_length(path: &Path) -> io::Result<u64> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut len = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            return Ok(len);
        }
        len += n as u64;
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(ids: std::ops::Range<u32>) -> Batch {
        let mut batch = Batch::default();
        for i in ids {
            let start = batch.bytes.len();
            batch
                .bytes
                .extend_from_slice(format!("{{\"id\":\"e{i}\",\"n\":{i}}}\n").as_bytes());
            batch.events += 1;
            batch.records.push(Record {
                start,
                end: batch.bytes.len(),
                id: format!("e{i}"),
                subject: format!("s.{i}"),
                key: (i % 2 == 0).then(|| format!("k\"{i}")),
                severity: Severity::High,
                cluster: "c".into(),
            });
        }
        batch
    }

    fn ids(batch: &Batch) -> Vec<String> {
        batch.records.iter().map(|r| r.id.clone()).collect()
    }

    #[test]
    fn appends_reads_in_order_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert!(spool.is_empty());
        spool.append(&batch(0..3), &[0, 1, 2]).unwrap();
        spool.append(&batch(3..6), &[1, 2]).unwrap();
        let (first, position) = spool.peek(4).unwrap();
        assert_eq!(ids(&first), ["e0", "e1", "e2", "e4"]);
        assert_eq!(first.line(&first.records[3]), b"{\"id\":\"e4\",\"n\":4}\n");
        assert_eq!(first.records[3].subject, "s.4");
        spool.commit(position).unwrap();
        drop(spool);

        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        let (rest, position) = spool.peek(10).unwrap();
        assert_eq!(ids(&rest), ["e5"]);
        spool.commit(position).unwrap();
        assert!(spool.is_empty());
        spool.append(&batch(6..7), &[0]).unwrap();
        assert_eq!(ids(&spool.peek(10).unwrap().0), ["e6"]);
    }

    #[test]
    fn a_torn_line_is_dropped_and_the_size_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool.append(&batch(0..2), &[0, 1]).unwrap();
        let pending = spool.pending_bytes();
        drop(spool);
        let segment = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "spool"))
            .unwrap();
        let mut file = OpenOptions::new().append(true).open(&segment).unwrap();
        file.write_all(b"{\"id\":\"torn\"").unwrap();
        let spool = Spool::open(dir.path(), pending + 10).unwrap();
        assert_eq!(ids(&spool.peek(10).unwrap().0), ["e0", "e1"]);
        assert_eq!(spool.pending_bytes(), pending);
        assert!(spool.has_room(10));
        assert!(!spool.has_room(11));
    }

    #[test]
    fn delivered_segments_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), u64::MAX).unwrap();
        // Force a second segment by pretending the first is full.
        spool.append(&batch(0..1), &[0]).unwrap();
        spool.segments.back_mut().unwrap().len = SEGMENT_BYTES;
        spool.append(&batch(1..2), &[0]).unwrap();
        assert_eq!(spool.segments.len(), 2);
        spool.segments.front_mut().unwrap().len =
            fs::metadata(segment_path(dir.path(), 1)).unwrap().len();
        let (all, position) = spool.peek(10).unwrap();
        assert_eq!(ids(&all), ["e0", "e1"]);
        spool.commit(position).unwrap();
        assert_eq!(spool.segments.len(), 1, "the first segment is gone");
        assert!(spool.is_empty());
    }
}
