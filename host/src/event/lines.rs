//! Splitting a byte stream into lines of at most a given size (a watch
//! response, a replay file), without reading a line that is too long into
//! memory: its bytes are skipped and only its length is reported. Lines are
//! bytes, not text: an Event that is not valid UTF-8 is the decoder's to
//! judge (it repairs it), not a reason to stop reading.
//!
//! The caller owns the reading (`fill_buf`/`consume` of whatever reader it
//! has) and hands each buffer to [`LineSplitter::push`].

/// One line, without its newline (and without a trailing `\r`).
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    Text(Vec<u8>),
    /// A line longer than the limit; `bytes` is its length.
    TooLong {
        bytes: usize,
    },
}

/// See the module documentation.
#[derive(Debug)]
pub struct LineSplitter {
    max: usize,
    buffer: Vec<u8>,
    /// Bytes of the current line when it is over the limit (then nothing is
    /// buffered).
    skipped: Option<usize>,
}

impl LineSplitter {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            buffer: Vec::new(),
            skipped: None,
        }
    }

    /// Takes bytes from `chunk` up to and including the first newline.
    /// Returns how many bytes it took (for the reader's `consume`) and the
    /// line, when one ended.
    pub fn push(&mut self, chunk: &[u8]) -> (usize, Option<Line>) {
        let (taken, complete) = match chunk.iter().position(|&b| b == b'\n') {
            Some(newline) => (newline + 1, true),
            None => (chunk.len(), false),
        };
        let content = &chunk[..taken - usize::from(complete)];
        self.take(content);
        if complete {
            (taken, Some(self.line()))
        } else {
            (taken, None)
        }
    }

    /// The end of the stream: the last line if it had no newline.
    pub fn finish(&mut self) -> Option<Line> {
        (self.skipped.is_some() || !self.buffer.is_empty()).then(|| self.line())
    }

    fn take(&mut self, content: &[u8]) {
        if let Some(skipped) = &mut self.skipped {
            *skipped += content.len();
        } else if self.buffer.len() + content.len() > self.max {
            self.skipped = Some(self.buffer.len() + content.len());
            self.buffer = Vec::new();
        } else {
            self.buffer.extend_from_slice(content);
        }
    }

    fn line(&mut self) -> Line {
        match self.skipped.take() {
            Some(bytes) => Line::TooLong { bytes },
            None => {
                let mut line = std::mem::take(&mut self.buffer);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                Line::Text(line)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(input: &[u8], max: usize, chunk: usize) -> Vec<Line> {
        let mut splitter = LineSplitter::new(max);
        let mut lines = Vec::new();
        for mut piece in input.chunks(chunk) {
            while !piece.is_empty() {
                let (taken, line) = splitter.push(piece);
                piece = &piece[taken..];
                lines.extend(line);
            }
        }
        lines.extend(splitter.finish());
        lines
    }

    #[test]
    fn splits_at_newlines_across_any_chunking() {
        let input = b"{\"a\":1}\r\n\n{\"b\":\xff}\nlast";
        for chunk in 1..input.len() {
            assert_eq!(
                split(input, 100, chunk),
                [
                    Line::Text(b"{\"a\":1}".to_vec()),
                    Line::Text(Vec::new()),
                    Line::Text(b"{\"b\":\xff}".to_vec()),
                    Line::Text(b"last".to_vec()),
                ],
                "chunks of {chunk}"
            );
        }
    }

    #[test]
    fn a_line_over_the_limit_is_measured_not_kept() {
        let mut input = vec![b'x'; 50];
        input.extend_from_slice(b"\nok\n");
        input.extend(vec![b'y'; 11]);
        for chunk in [1, 7, 64] {
            assert_eq!(
                split(&input, 10, chunk),
                [
                    Line::TooLong { bytes: 50 },
                    Line::Text(b"ok".to_vec()),
                    Line::TooLong { bytes: 11 },
                ]
            );
        }
    }
}
