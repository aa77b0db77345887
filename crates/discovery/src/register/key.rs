//! TSIG keys read from BIND key files, the format `tsig-keygen` and
//! `ddns-confgen` write and `named.conf` includes:
//!
//! ```text
//! key "zerorpc-update" {
//!     algorithm hmac-sha256;
//!     secret "6YjRVyDsJ9p853OX646GyKPwFfMseh/6p/GFoEWMGwI=";
//! };
//! ```

use std::fmt;
use std::path::Path;

use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::{Name, TSigner};

/// The most a request's signing time may differ from the name server's
/// clock, in seconds: BIND's and `nsupdate`'s value.
const FUDGE: u16 = 300;

/// A TSIG key: its name, algorithm and secret, read from a BIND key file
/// so that the file `named.conf` includes is the one clients use. The
/// secret never appears in `Debug` output or in errors.
///
/// ```
/// let key = zerorpc_discovery::TsigKey::parse(r#"
/// key "zerorpc-update" {
///     algorithm hmac-sha256;
///     secret "6YjRVyDsJ9p853OX646GyKPwFfMseh/6p/GFoEWMGwI=";
/// };
/// "#)?;
/// assert_eq!(key.name(), "zerorpc-update");
/// assert_eq!(key.algorithm(), "hmac-sha256");
/// # Ok::<(), zerorpc_discovery::KeyFileError>(())
/// ```
#[derive(Clone)]
pub struct TsigKey {
    name: Name,
    algorithm: &'static Algorithm,
    secret: Vec<u8>,
}

impl fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name())
            .field("algorithm", &self.algorithm.name)
            .finish_non_exhaustive()
    }
}

/// A key file that cannot be read or is not one BIND key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The file cannot be read.
    #[error("cannot read the TSIG key file {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The text is not a BIND key statement as `tsig-keygen` writes it.
    #[error("{origin}, line {line}: {message}")]
    Syntax {
        /// The file, or "the key text" for [`TsigKey::parse`].
        origin: String,
        /// Where, from 1.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

struct Algorithm {
    name: &'static str,
    tsig: TsigAlgorithm,
}

/// What hickory can sign with (with ring): HMAC-SHA2. BIND's default and
/// `tsig-keygen`'s is hmac-sha256.
static ALGORITHMS: [Algorithm; 3] = [
    Algorithm {
        name: "hmac-sha256",
        tsig: TsigAlgorithm::HmacSha256,
    },
    Algorithm {
        name: "hmac-sha384",
        tsig: TsigAlgorithm::HmacSha384,
    },
    Algorithm {
        name: "hmac-sha512",
        tsig: TsigAlgorithm::HmacSha512,
    },
];

impl TsigKey {
    /// Reads the key of a BIND key file (the file must hold one key).
    pub fn from_file(path: impl AsRef<Path>) -> Result<TsigKey, KeyFileError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Read {
            path: shown.clone(),
            source,
        })?;
        parse(&text, &shown)
    }

    /// Reads a key from the text of a BIND key file.
    pub fn parse(text: &str) -> Result<TsigKey, KeyFileError> {
        parse(text, "the key text")
    }

    /// The key's name, without a final dot, as the name server knows it.
    pub fn name(&self) -> String {
        self.name.to_string().trim_end_matches('.').to_owned()
    }

    /// The key's algorithm, as the file names it (`hmac-sha256`...).
    pub fn algorithm(&self) -> &'static str {
        self.algorithm.name
    }

    /// hickory's signer for this key.
    pub(crate) fn signer(&self) -> Result<TSigner, String> {
        TSigner::new(
            self.secret.clone(),
            self.algorithm.tsig.clone(),
            self.name.clone(),
            FUDGE,
        )
        .map_err(|error| format!("cannot sign with key {}: {error}", self.name()))
    }
}

/// One token of a key file, and its line.
#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Open,
    Close,
    Semicolon,
}

fn tokens(text: &str) -> Result<Vec<(Token, usize)>, (usize, String)> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '#' => skip_line(&mut chars, &mut line),
            '/' if chars.peek() == Some(&'/') => skip_line(&mut chars, &mut line),
            '/' if chars.peek() == Some(&'*') => {
                let start = line;
                chars.next();
                let mut previous = ' ';
                loop {
                    match chars.next() {
                        Some('/') if previous == '*' => break,
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            previous = c;
                        }
                        None => return Err((start, "a /* comment is not closed".into())),
                    }
                }
            }
            '{' => out.push((Token::Open, line)),
            '}' => out.push((Token::Close, line)),
            ';' => out.push((Token::Semicolon, line)),
            '"' => {
                let start = line;
                let mut text = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => text.extend(chars.next()),
                        Some('\n') => {
                            return Err((
                                start,
                                "a quoted string ends at the end of the line".into(),
                            ));
                        }
                        Some(c) => text.push(c),
                        None => return Err((start, "a quoted string is not closed".into())),
                    }
                }
                out.push((Token::Quoted(text), start));
            }
            c => {
                let mut word = String::from(c);
                while let Some(&next) = chars.peek() {
                    if next.is_whitespace() || "{};\"#".contains(next) {
                        break;
                    }
                    word.push(next);
                    chars.next();
                }
                out.push((Token::Word(word), line));
            }
        }
    }
    Ok(out)
}

fn skip_line(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, line: &mut usize) {
    for c in chars.by_ref() {
        if c == '\n' {
            *line += 1;
            return;
        }
    }
}

/// Reads the tokens of one statement in turn, with errors naming a line.
struct Reader {
    tokens: std::vec::IntoIter<(Token, usize)>,
    /// The line of the last token read, for errors at the end of the text.
    line: usize,
}

impl Reader {
    fn next(&mut self, expected: &str) -> Result<(Token, usize), (usize, String)> {
        match self.tokens.next() {
            Some((token, line)) => {
                self.line = line;
                Ok((token, line))
            }
            None => Err((
                self.line,
                format!("the text ends where {expected} should be"),
            )),
        }
    }

    /// A word or a quoted string.
    fn value(&mut self, expected: &str) -> Result<(String, usize), (usize, String)> {
        match self.next(expected)? {
            (Token::Word(text) | Token::Quoted(text), line) => Ok((text, line)),
            (other, line) => Err((line, format!("expected {expected}, found {}", show(&other)))),
        }
    }

    fn expect(&mut self, token: Token, expected: &str) -> Result<(), (usize, String)> {
        let (found, line) = self.next(expected)?;
        if found == token {
            Ok(())
        } else {
            Err((line, format!("expected {expected}, found {}", show(&found))))
        }
    }
}

fn show(token: &Token) -> String {
    match token {
        Token::Word(word) => format!("`{word}`"),
        Token::Quoted(text) => format!("\"{text}\""),
        Token::Open => "`{`".into(),
        Token::Close => "`}`".into(),
        Token::Semicolon => "`;`".into(),
    }
}

fn parse(text: &str, origin: &str) -> Result<TsigKey, KeyFileError> {
    parse_tokens(text).map_err(|(line, message)| KeyFileError::Syntax {
        origin: origin.to_owned(),
        line,
        message,
    })
}

fn parse_tokens(text: &str) -> Result<TsigKey, (usize, String)> {
    let mut reader = Reader {
        tokens: tokens(text)?.into_iter(),
        line: 1,
    };
    let mut key: Option<(TsigKey, usize)> = None;
    while let Some((token, line)) = reader.tokens.next() {
        reader.line = line;
        match token {
            Token::Word(word) if word.eq_ignore_ascii_case("key") => {}
            other => {
                return Err((
                    line,
                    format!(
                        "expected a `key` statement, found {}: a key file holds one \
                         `key \"NAME\" {{ algorithm ...; secret \"...\"; }};` as tsig-keygen writes it",
                        show(&other)
                    ),
                ));
            }
        }
        if let Some((_, first)) = &key {
            return Err((
                line,
                format!("a second key (the first is at line {first}): give a file with one key"),
            ));
        }
        key = Some((key_statement(&mut reader)?, line));
    }
    match key {
        Some((key, _)) => Ok(key),
        None => Err((
            reader.line,
            "no key statement: expected `key \"NAME\" { algorithm hmac-sha256; secret \"...\"; };` \
             as tsig-keygen writes it"
                .into(),
        )),
    }
}

/// The rest of a `key` statement, after the word `key`.
fn key_statement(reader: &mut Reader) -> Result<TsigKey, (usize, String)> {
    let (name_text, name_line) = reader.value("the key's name")?;
    let name = Name::from_ascii(&name_text)
        .map_err(|error| (name_line, format!("key name \"{name_text}\": {error}")))?;
    reader.expect(Token::Open, "`{` after the key's name")?;
    let (mut algorithm, mut secret) = (None, None);
    loop {
        let (token, line) = reader.next("`algorithm`, `secret` or `}`")?;
        let word = match token {
            Token::Close => break,
            Token::Word(word) => word,
            other => {
                return Err((
                    line,
                    format!(
                        "expected `algorithm`, `secret` or `}}`, found {}",
                        show(&other)
                    ),
                ));
            }
        };
        let (value, value_line) = reader.value(&format!("the value of `{word}`"))?;
        reader.expect(
            Token::Semicolon,
            &format!("`;` after the value of `{word}`"),
        )?;
        match word.to_ascii_lowercase().as_str() {
            "algorithm" => {
                let found = ALGORITHMS
                    .iter()
                    .find(|a| a.name.eq_ignore_ascii_case(&value))
                    .ok_or_else(|| {
                        let names: Vec<&str> = ALGORITHMS.iter().map(|a| a.name).collect();
                        (
                            value_line,
                            format!(
                                "algorithm {value} is not supported: use {} (hmac-sha256 is \
                                 tsig-keygen's default)",
                                names.join(", ")
                            ),
                        )
                    })?;
                algorithm = Some(found);
            }
            "secret" => {
                let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
                let decoded = data_encoding::BASE64
                    .decode(compact.as_bytes())
                    .map_err(|error| (value_line, format!("the secret is not base64: {error}")))?;
                if decoded.is_empty() {
                    return Err((value_line, "the secret is empty".into()));
                }
                secret = Some(decoded);
            }
            _ => {
                return Err((
                    line,
                    format!("unknown key setting `{word}`: a key has `algorithm` and `secret`"),
                ));
            }
        }
    }
    reader.expect(Token::Semicolon, "`;` after the key's `}`")?;
    let line = reader.line;
    let algorithm = algorithm.ok_or((line, format!("key {name_text} has no algorithm")))?;
    let secret = secret.ok_or((line, format!("key {name_text} has no secret")))?;
    Ok(TsigKey {
        name,
        algorithm,
        secret,
    })
}
