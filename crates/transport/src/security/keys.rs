//! CURVE keys, in binary and Z85, and czmq's certificate files (zcert).

use std::fmt;

use crate::Error;

/// A CURVE public key (32 bytes), written in Z85 (40 characters) in files
/// and on command lines.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CurveKey([u8; 32]);

impl CurveKey {
    /// The key of these bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> CurveKey {
        CurveKey(bytes)
    }

    /// Reads a key written in Z85 (40 characters; spaces around are
    /// ignored).
    pub fn from_z85(text: &str) -> Result<CurveKey, Error> {
        let text = text.trim();
        if text.len() != 40 {
            return Err(Error::security(format!(
                "a CURVE key is 40 Z85 characters, not {} ({text:?})",
                text.len()
            )));
        }
        z85_decode(text)
            .map(CurveKey)
            .ok_or_else(|| Error::security(format!("{text:?} is not a Z85 CURVE key")))
    }

    /// The key in Z85.
    pub fn to_z85(&self) -> String {
        let mut text = String::with_capacity(40);
        for chunk in self.0.chunks(4) {
            let mut value = chunk.iter().fold(0u32, |v, &b| v << 8 | u32::from(b));
            let mut digits = [0u8; 5];
            for digit in digits.iter_mut().rev() {
                *digit = Z85[(value % 85) as usize];
                value /= 85;
            }
            text.extend(digits.iter().map(|&d| char::from(d)));
        }
        text
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for CurveKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CurveKey({})", self.to_z85())
    }
}

impl fmt::Display for CurveKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_z85())
    }
}

/// Z85's alphabet (ZeroMQ RFC 32), digit values in order.
const Z85: &[u8; 85] =
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/// The 32 bytes of 40 Z85 characters, or `None` if they are not Z85. Our
/// own because the `zmq` crate's decoder ignores libzmq's verdict.
fn z85_decode(text: &str) -> Option<[u8; 32]> {
    let text = text.as_bytes();
    if text.len() != 40 {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (chunk, out) in text.chunks(5).zip(bytes.chunks_mut(4)) {
        let mut value: u32 = 0;
        for &c in chunk {
            let digit = Z85.iter().position(|&z| z == c)?;
            value = value.checked_mul(85)?.checked_add(digit as u32)?;
        }
        out.copy_from_slice(&value.to_be_bytes());
    }
    Some(bytes)
}

/// A CURVE key pair: a public key and its secret key.
///
/// `Debug` shows the public key only, so that a pair can be logged
/// without giving the secret away.
#[derive(Clone, PartialEq, Eq)]
pub struct CurveKeyPair {
    public: CurveKey,
    secret: [u8; 32],
}

impl CurveKeyPair {
    /// A fresh key pair, from libsodium's random source.
    pub fn generate() -> Result<CurveKeyPair, Error> {
        let pair =
            zmq::CurveKeyPair::new().map_err(|e| Error::zmq("cannot make a CURVE key pair", e))?;
        Ok(CurveKeyPair {
            public: CurveKey(pair.public_key),
            secret: pair.secret_key,
        })
    }

    /// The pair of these keys. Nothing checks that they belong together: a
    /// wrong pair fails every handshake.
    pub fn from_keys(public: CurveKey, secret: CurveKey) -> CurveKeyPair {
        CurveKeyPair {
            public,
            secret: secret.0,
        }
    }

    /// The public key, which peers are given.
    pub fn public(&self) -> CurveKey {
        self.public
    }

    /// The secret key's bytes.
    pub fn secret_bytes(&self) -> &[u8; 32] {
        &self.secret
    }

    /// Reads a czmq certificate (zcert) holding both keys: the `.key` file
    /// of `zerorpc keygen` and of czmq's tools.
    pub fn from_zcert(text: &str) -> Result<CurveKeyPair, Error> {
        let public = zcert_field(text, "public-key")?;
        let secret = zcert_field(text, "secret-key")?;
        match (public, secret) {
            (Some(public), Some(secret)) => Ok(CurveKeyPair::from_keys(public, secret)),
            (_, None) => Err(Error::security(
                "no secret-key in the certificate (a .pub file holds only the public key)",
            )),
            (None, Some(_)) => Err(Error::security("no public-key in the certificate")),
        }
    }

    /// The pair as a czmq secret certificate (the `.key` file), which must
    /// stay private.
    pub fn to_zcert_secret(&self) -> String {
        let mut text = zcert_header("ZeroMQ CURVE **Secret** Certificate");
        text.push_str(
            "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n\n",
        );
        text.push_str("metadata\ncurve\n");
        text.push_str(&format!("    public-key = \"{}\"\n", self.public));
        text.push_str(&format!("    secret-key = \"{}\"\n", CurveKey(self.secret)));
        text
    }

    /// The public key as a czmq public certificate (the `.pub` file), to
    /// hand to peers.
    pub fn to_zcert_public(&self) -> String {
        let mut text = zcert_header("ZeroMQ CURVE Public Certificate");
        text.push_str(
            "#   Exchange securely, or use a secure mechanism to verify the contents\n\
             #   of this file after exchange.\n\n",
        );
        text.push_str("metadata\ncurve\n");
        text.push_str(&format!("    public-key = \"{}\"\n", self.public));
        text
    }
}

impl fmt::Debug for CurveKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurveKeyPair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// Reads the public key of a czmq certificate, public (`.pub`) or secret
/// (`.key`).
pub fn zcert_public_key(text: &str) -> Result<CurveKey, Error> {
    zcert_field(text, "public-key")?
        .ok_or_else(|| Error::security("no public-key in the certificate"))
}

fn zcert_header(title: &str) -> String {
    format!("#   ****  Generated by zerorpc  ****\n#   {title}\n")
}

/// The value of `name = "..."` in a certificate, written in czmq's ZPL:
/// one `name = value` per line, indented under its section, the value
/// quoted or not, `#` starting a comment line.
fn zcert_field(text: &str, name: &str) -> Result<Option<CurveKey>, Error> {
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.trim() != name {
            continue;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        return CurveKey::from_z85(value)
            .map(Some)
            .map_err(|e| Error::security(format!("{name}: {e}")));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_round_trip_and_the_public_one_has_no_secret() {
        let pair = CurveKeyPair::generate().unwrap();
        let secret = pair.to_zcert_secret();
        assert_eq!(CurveKeyPair::from_zcert(&secret).unwrap(), pair);
        let public = pair.to_zcert_public();
        assert_eq!(zcert_public_key(&public).unwrap(), pair.public());
        assert!(!public.contains(&CurveKey(pair.secret).to_z85()));
        let err = CurveKeyPair::from_zcert(&public).unwrap_err();
        assert!(err.to_string().contains("no secret-key"), "{err}");
    }

    #[test]
    fn a_czmq_certificate_is_read() {
        // As czmq's zcert_save_secret writes it (the keys of libzmq's
        // zmq_curve(7) example).
        let text = "#   ****  Generated on 2015-03-30 16:04:26 by CZMQ  ****\n\
                    #   ZeroMQ CURVE **Secret** Certificate\n\
                    #   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n\
                    \n\
                    metadata\n    \
                        name = \"Pieter Hintjens\"\n\
                    curve\n    \
                        public-key = \"Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID\"\n    \
                        secret-key = \"D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs\"\n";
        let pair = CurveKeyPair::from_zcert(text).unwrap();
        assert_eq!(
            pair.public().to_z85(),
            "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
        );
        assert_eq!(
            CurveKey(*pair.secret_bytes()).to_z85(),
            "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"
        );
    }

    #[test]
    fn bad_keys_are_errors_naming_the_problem() {
        let short = CurveKey::from_z85("abc").unwrap_err();
        assert!(short.to_string().contains("40 Z85 characters"), "{short}");
        // 40 characters, but `~` is not in Z85's alphabet.
        let bad = CurveKey::from_z85(&"~".repeat(40)).unwrap_err();
        assert!(bad.to_string().contains("not a Z85"), "{bad}");
        let field =
            CurveKeyPair::from_zcert("public-key = \"nope\"\nsecret-key = \"nope\"\n").unwrap_err();
        assert!(field.to_string().contains("public-key"), "{field}");
    }

    #[test]
    fn z85_matches_libzmq() {
        let pair = zmq::CurveKeyPair::new().unwrap();
        let ours = CurveKey(pair.public_key).to_z85();
        assert_eq!(ours, zmq::z85_encode(&pair.public_key).unwrap());
        assert_eq!(CurveKey::from_z85(&ours).unwrap().0, pair.public_key);
        // The example of ZeroMQ RFC 32.
        let hello = z85_decode(&"HelloWorld".repeat(4)).unwrap();
        assert_eq!(
            &hello[..8],
            &[0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B]
        );
    }

    #[test]
    fn debug_does_not_show_the_secret() {
        let pair = CurveKeyPair::generate().unwrap();
        let shown = format!("{pair:?}");
        assert!(shown.contains(&pair.public().to_z85()));
        assert!(!shown.contains(&CurveKey(pair.secret).to_z85()));
    }
}
