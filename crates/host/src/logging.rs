//! Logs on stderr: readable text by default, JSON for log collectors; `RUST_LOG`
//! overrides the default level (`info`).
//!
//! Log values can hold text a client sent (a message id, a rejected timestamp in an error
//! message). In text logs every field value is escaped, so a newline or a control
//! character in it stays visible inside its one line and cannot forge another line. The
//! JSON format escapes by itself.

use std::fmt;
use std::io;

use tracing_subscriber::field::MakeExt as _;
use tracing_subscriber::fmt::format::{debug_fn, Writer};
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the process's log subscriber (once; later calls do nothing).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
        .with_writer(io::stderr);
    let _ = match format {
        LogFormat::Text => builder.fmt_fields(escaped_fields()).try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// `name=value` pairs separated by spaces, each value escaped (see the module docs).
pub fn escaped_fields() -> impl for<'writer> FormatFields<'writer> + Send + Sync + 'static {
    debug_fn(
        |writer: &mut Writer<'_>, field: &tracing::field::Field, value: &dyn fmt::Debug| {
            let text = format!("{value:?}");
            if field.name() != "message" {
                write!(writer, "{}=", field.name())?;
            }
            write_escaped(writer, &text)
        },
    )
    .delimited(" ")
}

/// Writes `text` with line breaks, tabs and every other control character escaped.
fn write_escaped(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    for c in text.chars() {
        match c {
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if c.is_control() => write!(out, "\\u{{{:x}}}", u32::from(c))?,
            c => out.write_char(c)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn logged(log: impl FnOnce()) -> String {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .fmt_fields(escaped_fields())
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn client_text_cannot_forge_a_log_line() {
        let forged = "2024-01-01\n2026-12-01T00:00:00Z ERROR inmoment: forged\r\u{1b}[31m";
        let text = logged(|| {
            tracing::info!(error = %forged, message_id = forged, "Event rejected.");
        });
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.contains(
                r"error=2024-01-01\n2026-12-01T00:00:00Z ERROR inmoment: forged\r\u{1b}[31m"
            ),
            "{text}"
        );
        assert!(text.contains(r#"message_id="2024-01-01\n2026"#), "{text}");
        assert!(text.contains("Event rejected."), "{text}");
    }
}
