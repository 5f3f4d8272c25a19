//! The stdout and file outputs: JSON lines, flushed after every batch.

use std::path::Path;

use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Writes batches of complete lines to stdout or a file.
pub struct LineWriter {
    out: Box<dyn AsyncWrite + Send + Unpin>,
}

impl std::fmt::Debug for LineWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineWriter").finish_non_exhaustive()
    }
}

impl LineWriter {
    pub fn stdout() -> Self {
        Self {
            out: Box::new(tokio::io::stdout()),
        }
    }

    /// Opens `path` for appending, creating it (and its directory) if needed.
    pub async fn append(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir).await?;
        }
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await?;
        Ok(Self {
            out: Box::new(file),
        })
    }

    /// Writes whole lines and flushes, so a reader never sees half a batch
    /// sitting in a buffer.
    pub async fn write_batch(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.out.write_all(bytes).await?;
        self.out.flush().await
    }

    pub async fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush().await
    }
}
