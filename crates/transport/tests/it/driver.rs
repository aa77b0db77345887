//! Sockets whose I/O the application drives (`Socket::driven`), here by a
//! plain `poll(2)` loop on a thread of the test's own.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::task::{Wake, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use zerorpc_transport::{ErrorKind, NotifyFd, OpenOptions, Socket, SocketDriver, SocketKind, Turn};
use zerorpc_wire::{Event, Header, Value, names};

use crate::support::{HB, LIMIT, config, request, run, tcp_server};

/// An eventfd: the waker of the test's driving loop, which polls it.
struct EventFd(OwnedFd);

impl EventFd {
    fn new() -> Arc<EventFd> {
        // SAFETY: a plain system call; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        assert!(fd >= 0, "eventfd: {}", std::io::Error::last_os_error());
        // SAFETY: a descriptor just created, owned by nothing else.
        Arc::new(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn drain(&self) {
        let mut count = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a buffer of 8.
        unsafe { libc::read(self.0.as_raw_fd(), count.as_mut_ptr().cast(), 8) };
    }
}

impl Wake for EventFd {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a buffer of 8.
        unsafe { libc::write(self.0.as_raw_fd(), one.as_ptr().cast(), 8) };
    }
}

/// Drives `driver` on a thread until it stops, waiting with `poll(2)` for
/// its descriptors and its waker; returns how many turns it took. Bounded
/// by `LIMIT` and a count of turns.
fn drive_on_thread(mut driver: SocketDriver) -> JoinHandle<usize> {
    std::thread::spawn(move || {
        let wake = EventFd::new();
        let waker = Waker::from(wake.clone());
        let deadline = Instant::now() + LIMIT * 4;
        let mut fds = Vec::new();
        for turns in 1..1_000_000 {
            assert!(Instant::now() < deadline, "the socket did not stop in time");
            match driver.turn() {
                Turn::Stopped => return turns,
                Turn::Busy => continue,
                _ => {}
            }
            if driver.register(&waker) {
                continue;
            }
            fds.clear();
            driver.notify_fds(&mut fds);
            let mut poll: Vec<libc::pollfd> = fds
                .iter()
                .map(|NotifyFd { fd, .. }| *fd)
                .chain([wake.0.as_raw_fd()])
                .map(|fd| libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            // SAFETY: a valid array of pollfd, its length, a timeout in ms.
            unsafe { libc::poll(poll.as_mut_ptr(), poll.len() as libc::nfds_t, 1000) };
            wake.drain();
            for (fd, polled) in fds.iter().zip(&poll) {
                if polled.revents & libc::POLLIN != 0 {
                    driver.readable(fd.key);
                }
            }
        }
        panic!("the driving loop did not end");
    })
}

fn driven_client(heartbeat: Option<Duration>) -> (Socket, JoinHandle<usize>) {
    let (client, driver) =
        Socket::driven(SocketKind::Client, config(heartbeat), |wait| wait()).unwrap();
    (client, drive_on_thread(driver))
}

#[test]
fn driven_client_calls_a_server_and_stops_when_dropped() {
    let (server, endpoint) = tcp_server(Some(HB));
    let (client, driving) = driven_client(Some(HB));
    client.connect(&endpoint).unwrap();
    for n in 0..50 {
        let mut call = client.open(request("add"), OpenOptions::default()).unwrap();
        let mut served = run(server.accept()).unwrap();
        assert_eq!(run(served.recv()).unwrap().name, "add");
        let reply = Event::new(Header::new(), names::OK, Value::Array(vec![n.into()]));
        run(served.send(reply)).unwrap();
        let answer = run(call.recv()).unwrap();
        assert_eq!(answer.args, Value::Array(vec![n.into()]));
    }
    drop(client);
    let turns = driving.join().unwrap();
    assert!(turns > 50, "{turns} turns");
}

#[test]
fn driven_client_keeps_a_slow_call_alive_with_heartbeats_from_its_timer() {
    let (server, endpoint) = tcp_server(Some(HB));
    let (client, driving) = driven_client(Some(HB));
    client.connect(&endpoint).unwrap();
    let mut call = client
        .open(request("slow"), OpenOptions::default())
        .unwrap();
    let mut served = run(server.accept()).unwrap();
    run(served.recv()).unwrap();
    // Ten heartbeat intervals with nothing to do but heartbeats: only the
    // driver's timer wakes it, and the server's channel stays open.
    std::thread::sleep(HB * 10);
    run(served.send(Event::new(Header::new(), names::OK, Value::Array(vec![])))).unwrap();
    assert_eq!(run(call.recv()).unwrap().name, names::OK);
    // The socket shuts down once its last handle, channels included, goes.
    drop((call, client));
    driving.join().unwrap();
}

#[test]
fn driven_client_loses_a_silent_server_on_its_timer() {
    // A raw ROUTER that accepts the request and never answers nor
    // heartbeats: the driver's timer must notice the loss.
    let raw = crate::support::Raw::new(zmq::ROUTER);
    let endpoint = raw.bind_tcp();
    let (client, driving) = driven_client(Some(HB));
    client.connect(&endpoint).unwrap();
    let mut call = client
        .open(request("slow"), OpenOptions::default())
        .unwrap();
    let error = run(call.recv()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::LostRemote);
    drop((call, client));
    driving.join().unwrap();
}

#[test]
fn a_driver_run_on_a_thread_serves_like_an_io_thread() {
    let (server, endpoint) = tcp_server(Some(HB));
    let (client, driver) =
        Socket::driven(SocketKind::Client, config(Some(HB)), |wait| wait()).unwrap();
    let running = std::thread::spawn(move || driver.run());
    client.connect(&endpoint).unwrap();
    let mut call = client.open(request("add"), OpenOptions::default()).unwrap();
    let mut served = run(server.accept()).unwrap();
    run(served.recv()).unwrap();
    run(served.send(Event::new(Header::new(), names::OK, Value::Array(vec![])))).unwrap();
    assert_eq!(run(call.recv()).unwrap().name, names::OK);
    drop((call, client));
    running.join().unwrap();
}
