//! `-d/--debug`: every event sent and received, on stderr, in
//! zerorpc-python's `--> name {header} args` shape, plus what became of
//! each channel.
//!
//! Observers run on the socket's I/O thread, which must never wait for a
//! terminal, so they only queue records; a thread of our own prints them.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use zerorpc::transport::{
    ChangeKind, ChannelChange, ChannelObserver, Direction, Observations, Observed, Observer,
};

use crate::exit::stderr_line;

/// Records that may wait for the printer; beyond, they are dropped and
/// counted rather than holding back the I/O thread.
const QUEUE: usize = 4096;

/// How long [`Printer::finish`] waits for the records still queued.
const FINISH: Duration = Duration::from_secs(1);

/// Prints what an observer saw, from its own thread.
pub(crate) struct Printer {
    observer: Arc<ChannelObserver>,
    done: std::sync::mpsc::Receiver<()>,
    thread: JoinHandle<()>,
}

impl Printer {
    pub(crate) fn start() -> Printer {
        let (observer, records) = ChannelObserver::new(QUEUE);
        let (done_tx, done) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            print_all(&records);
            let _ = done_tx.send(());
        });
        Printer {
            observer: Arc::new(observer),
            done,
            thread,
        }
    }

    /// The observer to attach to the socket.
    pub(crate) fn observer(&self) -> Arc<dyn Observer> {
        self.observer.clone()
    }

    /// Prints what is left once the socket is gone (which drops the
    /// observer and so ends the records), waiting a little at most, and
    /// says how many records were dropped.
    pub(crate) fn finish(self) {
        let Printer {
            observer,
            done,
            thread,
        } = self;
        let dropped = observer.dropped();
        drop(observer);
        if done.recv_timeout(FINISH).is_ok() {
            let _ = thread.join();
        }
        if dropped > 0 {
            stderr_line(format_args!("({dropped} debug records dropped)"));
        }
    }
}

fn print_all(records: &Observations) {
    for record in records.iter() {
        match record {
            Observed::Event(info) => {
                let arrow = match info.direction {
                    Direction::Sent => "-->",
                    Direction::Received => "<--",
                };
                let event = &info.event;
                stderr_line(format_args!(
                    "{arrow} {} {:?} {}",
                    event.name, event.header, event.args
                ));
            }
            Observed::Channel(change) => print_change(&change),
        }
    }
}

fn print_change(change: &ChannelChange) {
    let channel = change
        .channel
        .as_ref()
        .map_or_else(|| "-".to_owned(), |id| format!("{id:?}"));
    let what = match &change.change {
        ChangeKind::Opened => "opened".to_owned(),
        ChangeKind::Accepted => "accepted".to_owned(),
        ChangeKind::Closed(ending, error) => format!("closed ({ending:?}: {error})"),
        ChangeKind::Dropped(reason) => format!("dropped an event ({reason:?})"),
        _ => format!("{:?}", change.change),
    };
    stderr_line(format_args!(
        "=== channel {channel} {what} [{}]",
        change.peer
    ));
}
