//! Splitting a byte stream into lines of at most a given size (a watch
//! response, a replay file), without reading a line that is too long into
//! memory: its bytes are skipped and only its length is reported. Lines are
//! bytes, not text: an Event that is not valid UTF-8 is the decoder's to
//! judge (it repairs it), not a reason to stop reading.
//!
//! The caller owns the reading (`fill_buf`/`consume` of whatever reader it
//! has) and hands each buffer to [`LineSplitter::push`]; a line that lies
//! whole in the buffer is handed back borrowed from it, not copied.

/// One line, without its newline (and without a trailing `\r`).
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// Borrowed from the chunk when it lies whole in it (the usual case),
    /// else from the splitter.
    Text(&'a [u8]),
    /// A line longer than the limit; `bytes` is its length.
    TooLong { bytes: usize },
}

/// See the module documentation.
#[derive(Debug)]
pub struct LineSplitter {
    max: usize,
    /// The start of a line that began in an earlier chunk.
    buffer: Vec<u8>,
    /// Bytes of the current line when it is over the limit (then nothing is
    /// buffered).
    skipped: Option<usize>,
    /// A line was handed out: the next push starts a new one.
    ended: bool,
}

impl LineSplitter {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            buffer: Vec::new(),
            skipped: None,
            ended: false,
        }
    }

    /// Takes bytes from `chunk` up to and including the first newline.
    /// Returns how many bytes it took (for the reader's `consume`) and the
    /// line, when one ended.
    pub fn push<'a>(&'a mut self, chunk: &'a [u8]) -> (usize, Option<Line<'a>>) {
        self.start_line();
        let Some(newline) = memchr::memchr(b'\n', chunk) else {
            self.take(chunk);
            return (chunk.len(), None);
        };
        let content = &chunk[..newline];
        self.ended = true;
        let line = if self.skipped.is_none() && self.buffer.is_empty() && content.len() <= self.max
        {
            Line::Text(trim_cr(content))
        } else {
            self.take(content);
            self.line()
        };
        (newline + 1, Some(line))
    }

    /// The end of the stream: the last line if it had no newline.
    pub fn finish(&mut self) -> Option<Line<'_>> {
        self.start_line();
        if self.skipped.is_none() && self.buffer.is_empty() {
            return None;
        }
        self.ended = true;
        Some(self.line())
    }

    fn start_line(&mut self) {
        if self.ended {
            self.buffer.clear();
            self.skipped = None;
            self.ended = false;
        }
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

    fn line(&self) -> Line<'_> {
        match self.skipped {
            Some(bytes) => Line::TooLong { bytes },
            None => Line::Text(trim_cr(&self.buffer)),
        }
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Owned, for comparing.
    #[derive(Debug, PartialEq, Eq)]
    enum Owned {
        Text(Vec<u8>),
        TooLong { bytes: usize },
    }

    fn own(line: Line<'_>) -> Owned {
        match line {
            Line::Text(text) => Owned::Text(text.to_vec()),
            Line::TooLong { bytes } => Owned::TooLong { bytes },
        }
    }

    fn split(input: &[u8], max: usize, chunk: usize) -> Vec<Owned> {
        let mut splitter = LineSplitter::new(max);
        let mut lines = Vec::new();
        for mut piece in input.chunks(chunk) {
            while !piece.is_empty() {
                let (taken, line) = splitter.push(piece);
                lines.extend(line.map(own));
                piece = &piece[taken..];
            }
        }
        lines.extend(splitter.finish().map(own));
        lines
    }

    #[test]
    fn splits_at_newlines_across_any_chunking() {
        let input = b"{\"a\":1}\r\n\n{\"b\":\xff}\nlast";
        for chunk in 1..input.len() {
            assert_eq!(
                split(input, 100, chunk),
                [
                    Owned::Text(b"{\"a\":1}".to_vec()),
                    Owned::Text(Vec::new()),
                    Owned::Text(b"{\"b\":\xff}".to_vec()),
                    Owned::Text(b"last".to_vec()),
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
                    Owned::TooLong { bytes: 50 },
                    Owned::Text(b"ok".to_vec()),
                    Owned::TooLong { bytes: 11 },
                ]
            );
        }
    }
}
