//! What the libraries log, as lines on stderr: a long-running `zerorpc
//! --server` or client tells its user when DNS stops answering and when it
//! answers again, or when an endpoint change could not be applied; a
//! server or `zerorpc-hub` tells who it refused (PLAIN, CURVE). Lines
//! start with the binary's name: both binaries include this module.
//!
//! ```text
//! zerorpc: warning: DNS resolution failed; keeping the last answer and retrying until it works (endpoint=dns:hub.example.test, why=..., retry=5s)
//! ```
//!
//! Errors, warnings and information are shown; debug and trace are not.
//! The libraries log through `tracing`, and open no spans this would show.

use std::fmt::{self, Write as _};
use std::io::Write as _;

use anstyle::{AnsiColor, Style};
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Prints the libraries' events on stderr from now on.
pub(crate) fn install() {
    // Fails only when a subscriber is already installed, and nothing else
    // installs one.
    let _ = tracing::subscriber::set_global_default(StderrLog);
}

/// The lowest level shown.
const SHOWN: Level = Level::INFO;

struct StderrLog;

impl Subscriber for StderrLog {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= SHOWN
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::from_level(SHOWN))
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        // Spans are not shown, so they need no ids of their own.
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut line = Line::default();
        event.record(&mut line);
        let (label, colour) = match *event.metadata().level() {
            Level::ERROR => ("error", Some(AnsiColor::Red)),
            Level::WARN => ("warning", Some(AnsiColor::Yellow)),
            _ => ("info", None),
        };
        let style = Style::new().fg_color(colour.map(Into::into)).bold();
        let fields = if line.fields.is_empty() {
            String::new()
        } else {
            format!(" ({})", line.fields)
        };
        // As for status lines: a closed stderr must not stop the program.
        let _ = writeln!(
            anstream::stderr().lock(),
            "{style}{}: {label}:{style:#} {}{fields}",
            env!("CARGO_BIN_NAME"),
            line.message
        );
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// An event's message, and its other fields as `key=value, ...`.
#[derive(Default)]
struct Line {
    message: String,
    fields: String,
}

impl Line {
    fn add(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if field.name() == "message" {
            let _ = self.message.write_fmt(value);
            return;
        }
        if !self.fields.is_empty() {
            self.fields.push_str(", ");
        }
        let _ = write!(self.fields, "{}={value}", field.name());
    }
}

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.add(field, format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` fields and the message arrive here too, and print as
        // their `Display`.
        self.add(field, format_args!("{value:?}"));
    }
}
