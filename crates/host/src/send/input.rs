//! Where events come from: a file or stdin, one JSON event a line.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use super::SendError;

/// The input, opened before the run starts so that a missing file is a setup error.
pub enum Input {
    Stdin,
    File(File),
}

impl Input {
    /// FILE, or stdin when absent or `-`.
    pub fn open(path: Option<&Path>) -> Result<Input, SendError> {
        match path {
            Some(path) if path.as_os_str() != "-" => {
                File::open(path)
                    .map(Input::File)
                    .map_err(|source| SendError::Open {
                        path: path.to_path_buf(),
                        source,
                    })
            }
            _ => Ok(Input::Stdin),
        }
    }

    /// Events in a file (non-blank lines), so progress can show an ETA; a quick pass
    /// that holds one line at a time. Unknown for stdin.
    pub fn count_events(path: Option<&Path>) -> Option<u64> {
        let path = path.filter(|p| p.as_os_str() != "-")?;
        let mut reader = BufReader::new(File::open(path).ok()?);
        let mut line = Vec::new();
        let mut events = 0;
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => return Some(events),
                Ok(_) if is_blank(&line) => {}
                Ok(_) => events += 1,
                Err(_) => return None,
            }
        }
    }

    /// A buffered async reader (call inside the runtime).
    pub fn into_reader(self) -> Box<dyn AsyncBufRead + Unpin + Send> {
        const BUFFER: usize = 256 * 1024;
        match self {
            Input::Stdin => Box::new(tokio::io::BufReader::with_capacity(
                BUFFER,
                tokio::io::stdin(),
            )),
            Input::File(file) => Box::new(tokio::io::BufReader::with_capacity(
                BUFFER,
                tokio::fs::File::from_std(file),
            )),
        }
    }
}

/// Reads the next line into `buf` (without its `\n` or `\r\n`); false at the end.
pub async fn next_line(
    reader: &mut (dyn AsyncBufRead + Unpin + Send),
    buf: &mut Vec<u8>,
) -> io::Result<bool> {
    buf.clear();
    if reader.read_until(b'\n', buf).await? == 0 {
        return Ok(false);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    Ok(true)
}

pub fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// Refuses `--failed` naming the input itself, which creating it would empty.
pub fn check_distinct(input: Option<&Path>, failed: &Path) -> Result<(), SendError> {
    let same = |a: &Path, b: &Path| -> Option<bool> {
        Some(a.canonicalize().ok()? == b.canonicalize().ok()?)
    };
    match input {
        Some(input) if same(input, failed) == Some(true) => {
            Err(SendError::FailedIsInput(PathBuf::from(failed)))
        }
        _ => Ok(()),
    }
}
