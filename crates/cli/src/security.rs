//! PLAIN and CURVE on the command line: the flags, the files they name,
//! `zerorpc keygen`, and a server's policy reloaded on SIGHUP.
//!
//! Secrets (passwords, secret keys) come from files or the environment,
//! never from the command line, where other users of the machine can read
//! them (`ps`). Public keys and user names may be given directly.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use clap::Args;
use zerorpc::transport::{
    Authenticator, CurveKey, CurveKeyPair, PolicyFiles, Security, read_key_pair, read_public_key,
};

use crate::args::Endpoints;
use crate::exit::{Failure, stderr_line};

/// The security flags, of the side that binds (the mechanisms' server) or
/// of the side that connects (their client).
#[derive(Clone, Debug, Default, Args)]
#[command(next_help_heading = "Security: PLAIN and CURVE (see docs/operations.md)")]
pub(crate) struct SecurityFlags {
    /// CURVE key pair of this end, a zcert file as `zerorpc keygen` writes it (PREFIX.key). Turns CURVE on for the side that binds; the side that connects uses a fresh pair without it.
    #[arg(
        long = "curve-secret-key-file",
        value_name = "FILE",
        env = "ZERORPC_CURVE_SECRET_KEY_FILE"
    )]
    pub(crate) curve_secret_key_file: Option<PathBuf>,
    /// Binding side (a server): the client public keys let in, one Z85 key per line (`#` comments), or a directory of zcert .pub files. Without it any client that completes the CURVE handshake is served. Reread on SIGHUP.
    #[arg(long = "curve-allow-file", value_name = "FILE")]
    pub(crate) curve_allow_file: Option<PathBuf>,
    /// Connecting side (a client, or a server joining a hub): the server's public key, in Z85 or as a file (a zcert .pub file or the bare key). Turns CURVE on for a client.
    #[arg(
        long = "curve-server-key",
        value_name = "Z85_OR_FILE",
        env = "ZERORPC_CURVE_SERVER_KEY"
    )]
    pub(crate) curve_server_key: Option<String>,
    /// Connecting side: the PLAIN user name. Turns PLAIN on; the password comes from --plain-password-file or ZERORPC_PLAIN_PASSWORD.
    #[arg(long = "plain-user", value_name = "NAME", env = "ZERORPC_PLAIN_USER")]
    pub(crate) plain_user: Option<String>,
    /// Connecting side: a file whose first line is the PLAIN password.
    #[arg(
        long = "plain-password-file",
        value_name = "FILE",
        env = "ZERORPC_PLAIN_PASSWORD_FILE"
    )]
    pub(crate) plain_password_file: Option<PathBuf>,
    /// Binding side: the PLAIN users let in, `user:password` lines (`#` comments). Turns PLAIN on. Reread on SIGHUP.
    #[arg(long = "plain-passwords-file", value_name = "FILE")]
    pub(crate) plain_passwords_file: Option<PathBuf>,
    /// Binding side, with PLAIN or CURVE: the client IP addresses let in, one per line (`#` comments); others are refused. Reread on SIGHUP.
    #[arg(long = "allow-addresses-file", value_name = "FILE")]
    pub(crate) allow_addresses_file: Option<PathBuf>,
}

const BINDING: &str = "the side that binds (a server, or a client with --bind)";
const CONNECTING: &str =
    "the side that connects (a client, or a server with --connect, e.g. to a hub)";

/// Whether the mechanisms' server side is ours: we bind.
fn binds(endpoints: &Endpoints) -> bool {
    !endpoints.binds.is_empty()
}

/// The environment variable a client's PLAIN password may come from.
const PASSWORD_VARIABLE: &str = "ZERORPC_PLAIN_PASSWORD";

impl SecurityFlags {
    /// Whether any security flag was given.
    fn any(&self) -> bool {
        self.curve_secret_key_file.is_some()
            || self.curve_allow_file.is_some()
            || self.curve_server_key.is_some()
            || self.plain_user.is_some()
            || self.plain_password_file.is_some()
            || self.plain_passwords_file.is_some()
            || self.allow_addresses_file.is_some()
    }

    /// Refuses flags of the other side and combinations that mean nothing.
    ///
    /// ZeroMQ's mechanisms have a server side and a client side, which
    /// follow binding and connecting, not who serves calls: a server that
    /// connects to a hub is a PLAIN or CURVE client of it. So the side
    /// that binds takes the server's flags, the side that connects the
    /// client's, and one process cannot be both with security on.
    pub(crate) fn validate(&self, endpoints: &Endpoints) -> Result<(), Failure> {
        let binding = binds(endpoints);
        if self.any() && binding && !endpoints.connects.is_empty() {
            return Err(Failure::usage(
                "PLAIN and CURVE flags apply to the endpoints bound or to those connected, \
                 not to both: use --bind or --connect alone",
            ));
        }
        let given = |set: bool, flag: &'static str| set.then_some(flag);
        let server_only = [
            given(self.curve_allow_file.is_some(), "--curve-allow-file"),
            given(
                self.plain_passwords_file.is_some(),
                "--plain-passwords-file",
            ),
            given(
                self.allow_addresses_file.is_some(),
                "--allow-addresses-file",
            ),
        ];
        let client_only = [
            given(self.curve_server_key.is_some(), "--curve-server-key"),
            given(self.plain_user.is_some(), "--plain-user"),
            given(self.plain_password_file.is_some(), "--plain-password-file"),
        ];
        let (theirs, side) = if binding {
            (client_only, CONNECTING)
        } else {
            (server_only, BINDING)
        };
        if let Some(flag) = theirs.into_iter().flatten().next() {
            return Err(Failure::usage(format!("{flag} is for {side}")));
        }
        let (curve, plain) = if binding {
            (
                self.curve_secret_key_file.is_some(),
                self.plain_passwords_file.is_some(),
            )
        } else {
            (self.curve_server_key.is_some(), self.plain_user.is_some())
        };
        if curve && plain {
            return Err(Failure::usage(
                "PLAIN and CURVE cannot be used together: choose one",
            ));
        }
        if binding {
            if self.curve_allow_file.is_some() && !curve {
                return Err(Failure::usage(
                    "--curve-allow-file needs --curve-secret-key-file (the server's key pair)",
                ));
            }
            if self.allow_addresses_file.is_some() && !curve && !plain {
                return Err(Failure::usage(
                    "--allow-addresses-file needs PLAIN or CURVE \
                     (--plain-passwords-file or --curve-secret-key-file)",
                ));
            }
        } else {
            if self.curve_secret_key_file.is_some() && !curve {
                return Err(Failure::usage(
                    "--curve-secret-key-file needs --curve-server-key (the server's public key)",
                ));
            }
            if self.plain_password_file.is_some() && !plain {
                return Err(Failure::usage("--plain-password-file needs --plain-user"));
            }
        }
        Ok(())
    }

    /// The security of `endpoints`, its files read, and for the side that
    /// binds, what reloads its access lists.
    pub(crate) fn resolve(
        &self,
        endpoints: &Endpoints,
    ) -> Result<(Security, Option<ServerSecurity>), Failure> {
        if !binds(endpoints) {
            return Ok((self.client()?, None));
        }
        Ok(match self.server()? {
            Some(server) => (server.security.clone(), Some(server)),
            None => (Security::None, None),
        })
    }

    /// The connecting side's security, its files read.
    fn client(&self) -> Result<Security, Failure> {
        if let Some(server_key) = &self.curve_server_key {
            let server_key = server_public_key(server_key)?;
            let keys = match &self.curve_secret_key_file {
                Some(file) => read_key_pair(file).map_err(unusable)?,
                None => CurveKeyPair::generate().map_err(|e| {
                    Failure::local(format!(
                        "cannot make a CURVE key pair: {}",
                        zerorpc::error_chain(&e)
                    ))
                })?,
            };
            return Ok(Security::CurveClient { server_key, keys });
        }
        if let Some(username) = &self.plain_user {
            let password = match &self.plain_password_file {
                Some(file) => {
                    let text = std::fs::read_to_string(file).map_err(|e| {
                        Failure::usage(format!(
                            "cannot read the PLAIN password file {}: {e}",
                            file.display()
                        ))
                    })?;
                    text.lines().next().unwrap_or_default().to_owned()
                }
                None => std::env::var(PASSWORD_VARIABLE).map_err(|_| {
                    Failure::usage(format!(
                        "--plain-user needs a password: --plain-password-file FILE or \
                         {PASSWORD_VARIABLE} in the environment"
                    ))
                })?,
            };
            return Ok(Security::PlainClient {
                username: username.clone(),
                password,
            });
        }
        Ok(Security::None)
    }

    /// The binding side's security and what reloads its policy, or `None`
    /// for no security.
    fn server(&self) -> Result<Option<ServerSecurity>, Failure> {
        if self.curve_secret_key_file.is_none() && self.plain_passwords_file.is_none() {
            return Ok(None);
        }
        let files = PolicyFiles {
            curve_allow: self.curve_allow_file.clone(),
            plain_passwords: self.plain_passwords_file.clone(),
            addresses: self.allow_addresses_file.clone(),
        };
        let authenticator = Authenticator::new(files.load().map_err(unusable)?).map_err(|e| {
            Failure::local(format!(
                "cannot start authentication: {}",
                zerorpc::error_chain(&e)
            ))
        })?;
        let security = match &self.curve_secret_key_file {
            Some(file) => Security::CurveServer {
                keys: read_key_pair(file).map_err(unusable)?,
                authenticator: authenticator.clone(),
            },
            None => Security::PlainServer(authenticator.clone()),
        };
        Ok(Some(ServerSecurity {
            security,
            authenticator,
            files,
        }))
    }
}

/// A server's security, with the files its policy is read from.
pub(crate) struct ServerSecurity {
    pub(crate) security: Security,
    pub(crate) authenticator: Authenticator,
    files: PolicyFiles,
}

impl ServerSecurity {
    /// Rereads the policy's files on every SIGHUP, for as long as the
    /// returned task runs. A file that cannot be read or parsed leaves the
    /// policy in force, and says why. Connections already let in stay.
    pub(crate) fn reload_on_hangup(&self) -> tokio::task::JoinHandle<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let authenticator = self.authenticator.clone();
        let files = self.files.clone();
        tokio::spawn(async move {
            let Ok(mut hangups) = signal(SignalKind::hangup()) else {
                stderr_line(format_args!(
                    "cannot watch SIGHUP: the access lists will not be reloaded"
                ));
                return;
            };
            while hangups.recv().await.is_some() {
                match files.load() {
                    Ok(policy) => {
                        authenticator.set_policy(policy);
                        stderr_line(format_args!("SIGHUP: access lists reloaded"));
                    }
                    Err(e) => stderr_line(format_args!(
                        "SIGHUP: access lists not reloaded, the previous ones stay: {}",
                        zerorpc::error_chain(&e)
                    )),
                }
            }
        })
    }
}

/// A security setting that cannot be used: a usage error naming the file.
fn unusable(error: zerorpc::transport::Error) -> Failure {
    Failure::usage(zerorpc::error_chain(&error))
}

/// `zerorpc keygen`'s arguments.
#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// Writes PREFIX.key (both keys, mode 0600) and PREFIX.pub (the public key).
    #[arg(value_name = "PREFIX")]
    prefix: PathBuf,
    /// Replace existing files.
    #[arg(long)]
    force: bool,
}

/// `zerorpc keygen PREFIX`: a fresh key pair in czmq's certificate format.
pub(crate) fn keygen(args: &KeygenArgs) -> Result<(), Failure> {
    let pair = CurveKeyPair::generate().map_err(|e| {
        Failure::local(format!(
            "cannot make a CURVE key pair: {}",
            zerorpc::error_chain(&e)
        ))
    })?;
    let with = |extension: &str| {
        let mut path = args.prefix.clone().into_os_string();
        path.push(extension);
        PathBuf::from(path)
    };
    let (secret, public) = (with(".key"), with(".pub"));
    write(&secret, &pair.to_zcert_secret(), 0o600, args.force)?;
    write(&public, &pair.to_zcert_public(), 0o644, args.force)?;
    println!("{}", pair.public());
    Ok(())
}

fn write(path: &Path, text: &str, mode: u32, force: bool) -> Result<(), Failure> {
    let mut options = fs::OpenOptions::new();
    options.write(true).mode(mode);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(path).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::AlreadyExists {
            " (--force replaces it)"
        } else {
            ""
        };
        Failure::usage(format!("cannot write {}: {e}{hint}", path.display()))
    })?;
    // `mode` applies only to a file created now; a replaced one keeps its
    // permissions unless set again.
    let permissions = std::os::unix::fs::PermissionsExt::from_mode(mode);
    file.set_permissions(permissions)
        .and_then(|()| file.write_all(text.as_bytes()))
        .map_err(|e| Failure::local(format!("cannot write {}: {e}", path.display())))
}

/// `--curve-server-key`: a file, else a Z85 key.
fn server_public_key(given: &str) -> Result<CurveKey, Failure> {
    let path = Path::new(given);
    if path.exists() {
        return read_public_key(path).map_err(unusable);
    }
    CurveKey::from_z85(given).map_err(|e| {
        Failure::usage(format!(
            "--curve-server-key is neither a file nor a Z85 key: {e}"
        ))
    })
}
