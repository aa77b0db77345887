//! Streams made on the I/O thread: the [`Producer`]s of adopted calls
//! (see [`Adopted::stream`](crate::Adopted::stream)) and what wakes them.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Waker;

use zerorpc_wire::MessageId;

use crate::channel::ChannelShared;
use crate::respond::Producer;
use crate::socket::{Command, CommandQueue, Wake};

/// How many events one producer may make in a row before the I/O thread
/// turns to its other work (heartbeats, reading, the other producers).
pub(crate) const PRODUCE_BATCH: usize = 256;

/// How many events the producers together may make in one turn: a
/// thousand streams with credit must not keep the thread from reading,
/// from the timers and from other calls for long.
pub(crate) const PRODUCE_TURN: usize = 4 * PRODUCE_BATCH;

/// How many bytes of events one producer may make before they are sent:
/// the send queue's mark (which pauses a stream) is checked as they are.
pub(crate) const PRODUCE_BATCH_BYTES: usize = 64 * 1024;

/// The producers of one I/O thread's socket, by channel.
#[derive(Default)]
pub(crate) struct Producers {
    running: HashMap<MessageId, Running>,
    /// Producers to poll, in order: woken, just started, or with more to
    /// make after their last batch. A turn with some left does not wait.
    pub(crate) ready: VecDeque<MessageId>,
}

pub(crate) struct Running {
    pub(crate) producer: Box<dyn Producer>,
    pub(crate) shared: Arc<ChannelShared>,
    pub(crate) resume: Arc<Resume>,
    pub(crate) waker: Waker,
    /// Whether it has sent a `STREAM` event yet.
    pub(crate) streaming: bool,
}

impl Producers {
    /// Takes on `producer` for channel `id`, its waker set to resume it
    /// when the channel closes.
    pub(crate) fn start(
        &mut self,
        id: MessageId,
        shared: Arc<ChannelShared>,
        producer: Box<dyn Producer>,
        commands: &Arc<CommandQueue>,
        wake: &Arc<Wake>,
    ) {
        let resume = Arc::new(Resume {
            id: id.clone(),
            commands: commands.clone(),
            wake: wake.clone(),
            queued: AtomicBool::new(false),
        });
        let waker = Waker::from(resume.clone());
        // Nobody else waits on an adopted call's channel: a producer
        // waiting for its own events learns of the client's loss here.
        shared.set_closed_waker(&waker);
        let running = Running {
            producer,
            shared,
            resume,
            waker,
            streaming: false,
        };
        self.running.insert(id, running);
    }

    /// The producer of `id`, taken out while it runs.
    pub(crate) fn take(&mut self, id: &MessageId) -> Option<Running> {
        let running = self.running.remove(id)?;
        // Woken from now on, it is polled again.
        running.resume.queued.store(false, Ordering::Release);
        Some(running)
    }

    pub(crate) fn put_back(&mut self, id: MessageId, running: Running) {
        self.running.insert(id, running);
    }
}

/// Wakes a producer: asks its I/O thread to poll it again, once until it
/// does.
pub(crate) struct Resume {
    id: MessageId,
    commands: Arc<CommandQueue>,
    wake: Arc<Wake>,
    queued: AtomicBool,
}

impl std::task::Wake for Resume {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let resume = Command::Resume {
            id: self.id.clone(),
        };
        if self.commands.push(resume) {
            self.wake.wake();
        }
    }
}
