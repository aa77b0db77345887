//! How the connections of each side of a hub are secured.
//!
//! A hub binds both its sides, so on each it is the server of ZeroMQ's
//! security mechanisms: PLAIN or CURVE. Who is let in is decided by the ZAP
//! handler of the hub's ZeroMQ context, for the side's ZAP domain; the hub
//! knows no handler of its own (the `zerorpc-hub` binary runs the
//! transport's, in the context it passes to
//! [`Hub::start_in`](crate::Hub::start_in)).

use std::ffi::c_int;
use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// The security mechanism one side of a hub serves.
///
/// `Debug` does not show the secret key.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SideSecurity {
    /// No authentication and no encryption (ZeroMQ's NULL mechanism).
    #[default]
    None,
    /// PLAIN: peers send a user name and password, which the ZAP handler
    /// serving `zap_domain` checks.
    Plain {
        /// The ZAP domain the handler knows this side's users by.
        zap_domain: String,
    },
    /// CURVE with this key pair (32 bytes each): peers must know the public
    /// key, and the ZAP handler serving `zap_domain` decides which of their
    /// keys are let in. Everything is encrypted.
    Curve {
        /// The side's public key.
        public_key: [u8; 32],
        /// The side's secret key.
        secret_key: [u8; 32],
        /// The ZAP domain the handler knows this side's allowed keys by.
        zap_domain: String,
    },
}

impl fmt::Debug for SideSecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SideSecurity::None => f.write_str("None"),
            SideSecurity::Plain { zap_domain } => f
                .debug_struct("Plain")
                .field("zap_domain", zap_domain)
                .finish(),
            SideSecurity::Curve {
                public_key,
                zap_domain,
                ..
            } => f
                .debug_struct("Curve")
                .field("public_key", public_key)
                .field("zap_domain", zap_domain)
                .finish_non_exhaustive(),
        }
    }
}

/// The security of one side as a configuration file gives it (the keys
/// `in_security` and `out_security`): names of files, which the hub's
/// caller reads into a [`SideSecurity`] and a ZAP handler's policy. The
/// hub itself reads no file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SecurityFiles {
    /// The side's CURVE key pair (a czmq secret certificate): turns CURVE
    /// on.
    pub curve_secret_key_file: Option<PathBuf>,
    /// The peers' public keys let in: one Z85 key per line, or a directory
    /// of `.pub` certificates. Without it, every peer that completes the
    /// CURVE handshake is let in.
    pub curve_allow_file: Option<PathBuf>,
    /// PLAIN users, `user:password` lines: turns PLAIN on.
    pub plain_passwords_file: Option<PathBuf>,
    /// Peer IP addresses let in, one per line.
    pub allow_addresses_file: Option<PathBuf>,
}

/// libzmq's `ZMQ_ZAP_ENFORCE_DOMAIN`, a DRAFT option (the workspace builds
/// libzmq with the DRAFT API) that zmq-sys does not name.
const ZMQ_ZAP_ENFORCE_DOMAIN: c_int = 93;

/// Sets `security` on `socket`, before it binds.
pub(crate) fn apply(socket: &mut zmq::Socket, security: &SideSecurity) -> Result<(), zmq::Error> {
    match security {
        SideSecurity::None => return Ok(()),
        SideSecurity::Plain { zap_domain } => {
            socket.set_zap_domain(zap_domain)?;
            socket.set_plain_server(true)?;
        }
        SideSecurity::Curve {
            public_key,
            secret_key,
            zap_domain,
        } => {
            socket.set_zap_domain(zap_domain)?;
            socket.set_curve_publickey(public_key)?;
            socket.set_curve_secretkey(secret_key)?;
            socket.set_curve_server(true)?;
        }
    }
    // Without a handler in the context, libzmq would let every PLAIN and
    // CURVE peer in; with this, it refuses them.
    crate::sockets::set_int_option(socket, ZMQ_ZAP_ENFORCE_DOMAIN, 1)
}
