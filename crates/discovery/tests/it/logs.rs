//! What the library logs, kept for the tests to read.
//!
//! The resolver logs from its own thread, which a thread-local subscriber
//! would not see, so one global subscriber serves the whole test binary;
//! tests running at the same time tell their events apart by the name
//! they resolve, which each test makes its own.

use std::fmt::{self, Write as _};
use std::sync::{Mutex, OnceLock, PoisonError};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One logged event: its level, and its message followed by its fields.
#[derive(Clone, Debug)]
pub(crate) struct Logged {
    pub(crate) level: Level,
    pub(crate) text: String,
}

static EVENTS: Mutex<Vec<Logged>> = Mutex::new(Vec::new());

/// Starts keeping every event at DEBUG and above (once per test binary).
pub(crate) fn capture() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        tracing::subscriber::set_global_default(Keeper)
            .expect("no other subscriber in the test binary");
    });
}

/// The events kept so far whose text contains `part`, in order.
pub(crate) fn logged(part: &str) -> Vec<Logged> {
    EVENTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .filter(|event| event.text.contains(part))
        .cloned()
        .collect()
}

struct Keeper;

impl Subscriber for Keeper {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= Level::DEBUG
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut text = Text::default();
        event.record(&mut text);
        EVENTS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Logged {
                level: *event.metadata().level(),
                text: text.0,
            });
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// `message key=value key=value...`
#[derive(Default)]
struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        if field.name() != "message" {
            let _ = write!(self.0, "{}=", field.name());
        }
        let _ = write!(self.0, "{value:?}");
    }
}
