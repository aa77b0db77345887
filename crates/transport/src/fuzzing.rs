//! Drives the channel core with operations read from arbitrary bytes: what
//! the fuzz target `machine` (in `fuzz/`) and a randomized test run. Not
//! part of the API: it may change with any release.
//!
//! The bytes are read as a sequence of operations, each what a driver can
//! tell the core: an event arrived (raw bytes to decode, or an event built
//! from a few well-chosen parts, so that the interesting paths are found
//! quickly: replies, heartbeats and credit for channels that exist, that
//! ended or that never were), the application opened, granted credit on or
//! closed a channel, time passed, a socket came or went. After each one
//! every action is taken, and what the core says is checked against what
//! a driver knows: it never speaks of a channel it never had or already
//! closed, and it never asks to wait for a deadline in the past twice in a
//! row.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use zerorpc_wire::fuzzing::{self, Input};
use zerorpc_wire::{Event, IdKind, MessageId};

use crate::machine::{Action, Machine, MachineConfig, SocketId};

/// Runs the channel core over the operations `data` encodes; panics if the
/// core panics or breaks one of the checks above.
pub fn machine(data: &[u8]) {
    let mut bytes = Input::new(data);
    let flags = bytes.byte();
    let config = MachineConfig {
        heartbeat: (flags & 1 == 0).then_some(Duration::from_millis(100)),
        passive_heartbeat: flags & 2 != 0,
        accepts: flags & 4 != 0,
    };
    let mut driver = Driver {
        machine: Machine::new(config),
        sockets: Vec::new(),
        live: HashSet::new(),
        known: Vec::new(),
        now: Instant::now(),
        next_id: 0,
    };
    let first = driver.machine.add_socket();
    driver.sockets.push(first);
    // Bounded: every operation takes at least one byte.
    while !bytes.is_empty() {
        driver.step(&mut bytes);
        driver.settle();
    }
}

struct Driver {
    machine: Machine,
    sockets: Vec<SocketId>,
    /// Channels the core has told of and not closed.
    live: HashSet<MessageId>,
    /// Every channel id seen, live or not: events for them are the ones
    /// worth sending.
    known: Vec<MessageId>,
    now: Instant,
    next_id: u32,
}

impl Driver {
    fn step(&mut self, bytes: &mut Input<'_>) {
        let socket = self.socket(bytes.byte());
        match bytes.byte() % 8 {
            0 => {
                // Raw bytes, as a peer may send anything.
                let mut envelope = self.envelope(bytes);
                let len = usize::from(bytes.byte());
                if let Ok(event) = Event::decode(&bytes.take(len)) {
                    self.machine
                        .on_event(socket, &mut envelope, event, self.now);
                }
            }
            1 | 2 => {
                let mut envelope = self.envelope(bytes);
                let event = self.event(bytes);
                self.machine
                    .on_event(socket, &mut envelope, event, self.now);
            }
            3 => {
                let id = self.fresh_id();
                let timeout = (bytes.byte() & 1 == 1).then_some(Duration::from_millis(300));
                if self.machine.open(id.clone(), (), timeout, self.now).is_ok() {
                    self.live.insert(id.clone());
                    self.known.push(id);
                }
            }
            4 => {
                if let Some(id) = self.pick(bytes.byte()) {
                    let n = i64::from(bytes.byte() as i8);
                    self.machine.grant(&id, n);
                }
            }
            5 => {
                // The core answers with the channel's `Close`.
                if let Some(id) = self.pick(bytes.byte()) {
                    self.machine.close(&id);
                }
            }
            6 => {
                self.now += Duration::from_millis(u64::from(bytes.byte()) * 5);
                self.machine.handle_timeout(self.now);
            }
            _ => match bytes.byte() % 3 {
                0 => self.sockets.push(self.machine.add_socket()),
                1 => self.machine.remove_socket(socket),
                _ => {
                    self.machine.retire_socket(socket);
                }
            },
        }
    }

    /// Takes every action, checking each against what the driver knows.
    fn settle(&mut self) {
        while let Some(action) = self.machine.poll_action() {
            match action {
                Action::Accepted(accepted) => {
                    assert!(
                        self.live.insert(accepted.id.clone()),
                        "accepted a channel already open: {:?}",
                        accepted.id
                    );
                    self.known.push(accepted.id);
                }
                Action::Deliver(id, (), _) | Action::Credit(id, (), _) => {
                    assert!(self.live.contains(&id), "spoke of a closed channel {id:?}");
                }
                Action::Close(closed) => {
                    assert!(
                        self.live.remove(&closed.id),
                        "closed a channel twice or never opened: {:?}",
                        closed.id
                    );
                }
                Action::Transmit(_) | Action::Dropped(_) | Action::Released(_) => {}
            }
        }
        if let Some(deadline) = self.machine.next_deadline()
            && deadline <= self.now
        {
            self.machine.handle_timeout(self.now);
            while let Some(action) = self.machine.poll_action() {
                if let Action::Close(closed) = action {
                    self.live.remove(&closed.id);
                }
            }
            let again = self.machine.next_deadline();
            assert!(
                again.is_none_or(|at| at > self.now),
                "a deadline stays in the past after it was handled"
            );
        }
    }

    fn socket(&self, byte: u8) -> SocketId {
        self.sockets[usize::from(byte) % self.sockets.len()]
    }

    fn envelope(&self, bytes: &mut Input<'_>) -> Vec<Vec<u8>> {
        let frames = bytes.byte() % 4;
        (0..frames)
            .map(|_| {
                let len = usize::from(bytes.byte() % 8);
                bytes.take(len)
            })
            .collect()
    }

    fn fresh_id(&mut self) -> MessageId {
        self.next_id += 1;
        MessageId::new(&self.next_id.to_be_bytes(), IdKind::Bin)
    }

    /// A known channel id, or none, by `byte`.
    fn pick(&self, byte: u8) -> Option<MessageId> {
        if self.known.is_empty() {
            return None;
        }
        Some(self.known[usize::from(byte) % self.known.len()].clone())
    }

    /// An event made of parts the core tells apart.
    fn event(&mut self, bytes: &mut Input<'_>) -> Event {
        let choice = bytes.byte();
        let id = match bytes.byte() % 4 {
            // A new id: opens a channel, or answers an unknown one.
            0 | 1 => self.fresh_id(),
            // A known id, opening it again.
            _ => match self.pick(bytes.byte()) {
                Some(id) => id,
                None => self.fresh_id(),
            },
        };
        let response_to = if choice & 0x80 != 0 {
            self.pick(bytes.byte()).or_else(|| Some(self.fresh_id()))
        } else {
            None
        };
        fuzzing::event(bytes, choice, id, response_to)
    }
}

#[cfg(test)]
mod tests {
    /// The fuzz target's checks, over random operations: every CI run
    /// exercises them even without a fuzzer.
    #[test]
    fn random_operations_keep_the_channel_core_consistent() {
        let mut rng = fastrand::Rng::with_seed(0x7a65_726f);
        for _ in 0..10_000 {
            let len = rng.usize(0..512);
            let data: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            super::machine(&data);
        }
    }
}
