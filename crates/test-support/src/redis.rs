//! A `redis-server` started on a loopback port for a test.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::{Process, free_port, redis_server};

/// How long a server may take to say it is ready.
const READY: Duration = Duration::from_secs(20);

/// A `redis-server` on a free port of 127.0.0.1, with persistence off
/// (`--save ""`, no AOF), in a scratch directory of its own; killed and
/// its directory removed when dropped.
pub struct RedisServer {
    process: Option<Process>,
    program: PathBuf,
    port: u16,
    dir: PathBuf,
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a server with `extra` arguments (e.g. `--cluster-enabled
    /// yes`), or returns `None` after the missing-component policy (see
    /// [`redis_server`]) when `redis-server` is not installed.
    ///
    /// # Panics
    ///
    /// If the server does not start or say it is ready in time.
    pub fn start(extra: &[&str]) -> Option<RedisServer> {
        let program = redis_server()?;
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("zerorpc-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory for redis-server");
        let mut server = RedisServer {
            process: None,
            program,
            port,
            dir,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
        };
        server.restart();
        Some(server)
    }

    /// Stops the server if it runs, and starts it again on the same port;
    /// with persistence off, its data is gone.
    pub fn restart(&mut self) {
        self.stop();
        let mut command = Command::new(&self.program);
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra);
        let process = Process::spawn(&format!("redis-server:{}", self.port), command)
            .expect("starting redis-server");
        process
            .wait_for_line("Ready to accept connections", READY)
            .expect("redis-server is ready");
        self.process = Some(process);
    }

    /// Kills the server (as a crash would: nothing is saved).
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
        }
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
