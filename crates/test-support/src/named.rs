//! BIND's `named`, started by a test on 127.0.0.1 and a free port, and
//! TSIG keys made by BIND's own `tsig-keygen`.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::{Process, free_port};

/// How long `named` may take to load its zones and start answering.
const STARTUP: Duration = Duration::from_secs(30);

/// The options every test server gets; `DIR` and `PORT` are filled in.
///
/// `controls { };`: no rndc channel, which would take port 953 and keep a
/// second named (another test) from starting.
const OPTIONS: &str = "options {
    directory \"DIR\";
    pid-file \"DIR/named.pid\";
    session-keyfile \"DIR/session.key\";
    listen-on port PORT { 127.0.0.1; };
    listen-on-v6 { none; };
    recursion no;
    dnssec-validation no;
    notify no;
};
controls { };
";

/// A running `named` (killed when dropped), answering on 127.0.0.1 over UDP
/// and TCP.
#[derive(Debug)]
pub struct Named {
    process: Process,
    port: u16,
}

impl Named {
    /// Starts `program` (see [`named`](crate::named)) with test options
    /// (working directory `dir`, a free port, no recursion) followed by
    /// `config`: zones, keys, views. In both, `DIR` stands for `dir`. Waits
    /// until named serves.
    ///
    /// # Panics
    ///
    /// If named does not start, or refuses to load a zone, with the
    /// configuration and named's log.
    pub fn start(program: &Path, dir: &Path, config: &str) -> Named {
        let dir_text = dir.to_str().expect("a UTF-8 directory for named");
        let port = free_port();
        let conf = format!("{OPTIONS}{config}")
            .replace("DIR", dir_text)
            .replace("PORT", &port.to_string());
        let conf_path = dir.join("named.conf");
        std::fs::write(&conf_path, &conf).expect("writing named.conf");
        let mut command = Command::new(program);
        command.arg("-g").arg("-c").arg(&conf_path);
        let process = Process::spawn("named", command).expect("starting named");
        // Not "running": named's first lines say "running as: named ...".
        process
            .wait_for_stderr_line("all zones loaded", STARTUP)
            .unwrap_or_else(|e| panic!("named did not start with\n{conf}\n{e}"));
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let accepting = crate::wait_until(STARTUP, || {
            TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok()
        });
        assert!(
            accepting,
            "named does not accept TCP connections on {address}\n{conf}\n{}",
            process.report()
        );
        // named runs even when a zone fails to load; its log says so before
        // "running".
        if let Ok(line) = process.wait_for_stderr_line("not loaded due to errors", Duration::ZERO) {
            panic!("named refused a zone: {line}\n{conf}\n{}", process.report());
        }
        Named { process, port }
    }

    /// Starts `program` serving `zone` (e.g. `example.test`) as a primary
    /// zone holding only its SOA and NS records and the name server's
    /// address (127.0.0.1), which `granted`, one of the `keys` (the texts
    /// of BIND key files, as [`tsig_keygen`] makes them), may update
    /// anywhere (RFC 2136); the other keys are known to named and granted
    /// nothing. The files go into `dir`.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub fn start_dynamic(
        program: &Path,
        dir: &Path,
        zone: &str,
        keys: &[&str],
        granted: &str,
    ) -> Named {
        let zone_file = format!(
            "$ORIGIN {zone}.
{zone}. 3600 IN SOA ns.{zone}. hostmaster.{zone}. 1 3600 600 604800 60
{zone}. 3600 IN NS ns.{zone}.
ns.{zone}. 3600 IN A 127.0.0.1
"
        );
        std::fs::write(dir.join(format!("{zone}.zone")), zone_file).expect("writing the zone");
        std::fs::write(dir.join("keys.conf"), keys.concat()).expect("writing the keys");
        let config = format!(
            "include \"DIR/keys.conf\";
zone \"{zone}\" {{
    type primary;
    file \"DIR/{zone}.zone\";
    update-policy {{ grant {granted} zonesub ANY; }};
}};
"
        );
        Named::start(program, dir, &config)
    }

    /// The port it answers on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where it answers: 127.0.0.1 and [`port`](Self::port).
    pub fn address(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Its log so far (stderr), for failure messages.
    pub fn report(&self) -> String {
        self.process.report()
    }
}

/// A new hmac-sha256 key named `name`, as `tsig-keygen` writes it: the
/// text of a BIND key file, for named.conf and for clients alike. `None`
/// (after the skip message) if `tsig-keygen` is missing.
///
/// # Panics
///
/// If `tsig-keygen` fails.
pub fn tsig_keygen(name: &str) -> Option<String> {
    let program = crate::component::required_program("tsig-keygen")?;
    let output = Command::new(&program)
        .args(["-a", "hmac-sha256", name])
        .output()
        .expect("running tsig-keygen");
    assert!(output.status.success(), "tsig-keygen failed: {output:?}");
    Some(String::from_utf8(output.stdout).expect("tsig-keygen writes text"))
}
