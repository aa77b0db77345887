//! The files keys and access lists are kept in, as the `zerorpc` and
//! `zerorpc-hub` binaries read them: a library user can read the same.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::{AccessPolicy, CurveKey, CurveKeyPair, zcert_public_key};
use crate::Error;

/// The files an [`AccessPolicy`] is read from; reading them again
/// ([`load`](PolicyFiles::load)) is how a server's lists are reloaded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyFiles {
    /// The CURVE client keys let in: one Z85 key per line (`#` starts a
    /// comment line), or a directory of czmq `.pub` certificates. `None`
    /// lets in every key.
    pub curve_allow: Option<PathBuf>,
    /// PLAIN users, `user:password` lines (`#` comments).
    pub plain_passwords: Option<PathBuf>,
    /// Peer IP addresses let in, one per line (`#` comments). `None` lets
    /// in every address.
    pub addresses: Option<PathBuf>,
}

impl PolicyFiles {
    /// Reads the files into a policy; the error names the file and line
    /// at fault.
    pub fn load(&self) -> Result<AccessPolicy, Error> {
        Ok(AccessPolicy {
            curve_keys: self
                .curve_allow
                .as_deref()
                .map(read_allowed_keys)
                .transpose()?,
            plain_users: match &self.plain_passwords {
                Some(file) => read_passwords(file)?,
                None => HashMap::new(),
            },
            addresses: self.addresses.as_deref().map(read_addresses).transpose()?,
        })
    }
}

fn read(path: &Path, what: &str) -> Result<String, Error> {
    fs::read_to_string(path)
        .map_err(|e| Error::io(format!("cannot read {what} {}", path.display()), e))
}

/// The lines of a list file that say something: trimmed, without blank
/// lines and `#` comments, with their line numbers.
fn entries(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
}

fn at(path: &Path, line: Option<usize>, why: impl std::fmt::Display) -> Error {
    match line {
        Some(n) => Error::security(format!("{} line {n}: {why}", path.display())),
        None => Error::security(format!("{}: {why}", path.display())),
    }
}

/// Reads a key pair from a czmq secret certificate (a `.key` file).
pub fn read_key_pair(path: &Path) -> Result<CurveKeyPair, Error> {
    let text = read(path, "the CURVE key file")?;
    CurveKeyPair::from_zcert(&text).map_err(|e| at(path, None, e))
}

/// Reads a public key from a file: a czmq certificate (public or secret),
/// or a bare Z85 key on its first line.
pub fn read_public_key(path: &Path) -> Result<CurveKey, Error> {
    let text = read(path, "the CURVE public key file")?;
    let first = entries(&text).map(|(_, line)| line).next();
    first
        .and_then(|line| CurveKey::from_z85(line).ok())
        .map_or_else(|| zcert_public_key(&text), Ok)
        .map_err(|e| at(path, None, e))
}

/// One Z85 key per line, or a directory of czmq `.pub` certificates.
fn read_allowed_keys(path: &Path) -> Result<HashSet<CurveKey>, Error> {
    if path.is_dir() {
        let cannot = |e| Error::io(format!("cannot read the directory {}", path.display()), e);
        let mut keys = HashSet::new();
        for entry in fs::read_dir(path).map_err(cannot)? {
            let file = entry.map_err(cannot)?.path();
            if file.extension().is_some_and(|ext| ext == "pub") {
                let text = read(&file, "the certificate")?;
                keys.insert(zcert_public_key(&text).map_err(|e| at(&file, None, e))?);
            }
        }
        return Ok(keys);
    }
    let text = read(path, "the CURVE allow file")?;
    entries(&text)
        .map(|(n, line)| CurveKey::from_z85(line).map_err(|e| at(path, Some(n), e)))
        .collect()
}

/// `user:password` lines.
fn read_passwords(path: &Path) -> Result<HashMap<String, String>, Error> {
    let text = read(path, "the PLAIN passwords file")?;
    entries(&text)
        .map(|(n, line)| match line.split_once(':') {
            Some((user, password)) if !user.is_empty() => {
                Ok((user.to_owned(), password.to_owned()))
            }
            // The line is not shown: it may be a password.
            _ => Err(at(path, Some(n), "expected user:password")),
        })
        .collect()
}

/// One IP address per line.
fn read_addresses(path: &Path) -> Result<HashSet<IpAddr>, Error> {
    let text = read(path, "the allowed addresses file")?;
    entries(&text)
        .map(|(n, line)| {
            line.parse()
                .map_err(|_| at(path, Some(n), format!("{line:?} is not an IP address")))
        })
        .collect()
}
