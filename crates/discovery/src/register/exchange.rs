//! DNS messages to and from a zone's primary name server over TCP: plain
//! queries, and UPDATE messages signed with a TSIG key whose answers are
//! checked.
//!
//! hickory-proto builds, signs and parses the messages; the exchange is
//! ours rather than hickory-net's client because that client's TSIG check
//! turns the unsigned answers of a refused key (NOTAUTH with BADSIG,
//! BADKEY or BADTIME, RFC 8945 §5.3) into an opaque verification error,
//! and those answers are the ones a user needs explained. TCP rather than
//! UDP: an UPDATE with a long TXT record does not fit a datagram, and one
//! connection serves the queries and updates of one operation.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::rr::{Name, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{TsigKey, UpdateError};

/// A connection to a zone's primary name server, and what errors name.
pub(crate) struct Session {
    stream: TcpStream,
    server: SocketAddr,
    zone: String,
    key: TsigKey,
    timeout: Duration,
}

/// At most this many answers to other requests are skipped while waiting
/// for ours (a server answers in order on one connection; this bounds a
/// confused one).
const STRAY_ANSWERS: usize = 8;

impl Session {
    /// Connects to `server`, the primary of `zone`.
    pub(crate) async fn open(
        server: SocketAddr,
        zone: &str,
        key: &TsigKey,
        timeout: Duration,
    ) -> Result<Session, UpdateError> {
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(server)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => return Err(UpdateError::Unreachable { server, source }),
            Err(_) => return Err(UpdateError::Timeout { server, timeout }),
        };
        Ok(Session {
            stream,
            server,
            zone: zone.to_owned(),
            key: key.clone(),
            timeout,
        })
    }

    /// The records of `name` and `kind` the server holds (none for a name
    /// that does not exist).
    pub(crate) async fn query(
        &mut self,
        name: &Name,
        kind: RecordType,
    ) -> Result<Vec<Record>, UpdateError> {
        let mut message = Message::query();
        message.metadata.recursion_desired = false;
        message.add_query(Query::query(name.clone(), kind));
        let bytes = self.encode(&message)?;
        let answer = self.round_trip(&bytes, message.metadata.id).await?;
        let answer = self.decode(&answer)?;
        match answer.metadata.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain => Ok(answer
                .answers
                .into_iter()
                .filter(|record| record.record_type() == kind && record.name == *name)
                .collect()),
            // Without recursion, a server refuses queries for zones it
            // does not serve.
            ResponseCode::Refused => Err(self.refused()),
            code => Err(UpdateError::Rejected {
                server: self.server,
                zone: self.zone.clone(),
                answer: format!("{} to a query for {name} {kind}", mnemonic(code)),
            }),
        }
    }

    /// Sends an UPDATE signed with the key; returns the server's response
    /// code once the answer's signature is checked. Codes that refuse the
    /// key are errors; others (a prerequisite not met) are the caller's.
    pub(crate) async fn update(
        &mut self,
        mut message: Message,
    ) -> Result<ResponseCode, UpdateError> {
        message.metadata.op_code = OpCode::Update;
        message.metadata.recursion_desired = false;
        let signer = self.key.signer().map_err(|why| self.bad_answer(why))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let verifier = message
            .finalize(&signer, now)
            .map_err(|error| self.bad_answer(format!("cannot sign the update: {error}")))?;
        let bytes = self.encode(&message)?;
        let answer_bytes = self.round_trip(&bytes, message.metadata.id).await?;
        let answer = self.decode(&answer_bytes)?;
        let code = answer.metadata.response_code;
        match answer.signature() {
            // A refused key gets an unsigned answer saying why (RFC 8945
            // §5.3): it cannot be verified, only reported.
            Some(tsig) if tsig.data.error.is_some() => {
                let why = match &tsig.data.error {
                    Some(TsigError::BadSig) => {
                        "BADSIG: the key's secret differs from the server's".to_owned()
                    }
                    Some(TsigError::BadKey) => {
                        "BADKEY: the server has no key of this name and algorithm".to_owned()
                    }
                    Some(TsigError::BadTime) => "BADTIME: the clocks of this machine and the \
                                                 server differ by more than 5 minutes"
                        .to_owned(),
                    Some(other) => format!("{other:?}"),
                    None => String::new(),
                };
                Err(self.not_authorized(code, why))
            }
            Some(_) => {
                let mut verifier = verifier.ok_or_else(|| {
                    self.bad_answer(
                        "the update was signed without a way to check the answer".into(),
                    )
                })?;
                verifier.verify(&answer_bytes).map_err(|error| {
                    self.bad_answer(format!(
                        "the answer's TSIG signature does not verify: {error}"
                    ))
                })?;
                self.check(code)
            }
            // BIND signs every answer to a signed request it can verify; an
            // unsigned success could be anyone's.
            None if code == ResponseCode::NoError => {
                Err(self
                    .bad_answer("the answer claims success but is not signed with the key".into()))
            }
            None => self.check(code),
        }
    }

    /// Codes that say the key or the zone is wrong are errors.
    fn check(&self, code: ResponseCode) -> Result<ResponseCode, UpdateError> {
        match code {
            ResponseCode::Refused => Err(self.refused()),
            ResponseCode::NotAuth => {
                Err(self
                    .not_authorized(code, "the server is not authoritative for the zone".into()))
            }
            ResponseCode::NoError | ResponseCode::YXRRSet | ResponseCode::NXRRSet => Ok(code),
            other => Err(UpdateError::Rejected {
                server: self.server,
                zone: self.zone.clone(),
                answer: format!("{} ({})", mnemonic(other), describe(other)),
            }),
        }
    }

    fn refused(&self) -> UpdateError {
        UpdateError::Refused {
            server: self.server,
            zone: self.zone.clone(),
            key: self.key.name(),
        }
    }

    fn not_authorized(&self, code: ResponseCode, why: String) -> UpdateError {
        UpdateError::NotAuthorized {
            server: self.server,
            zone: self.zone.clone(),
            key: self.key.name(),
            answer: format!("{}, {why}", mnemonic(code)),
        }
    }

    fn bad_answer(&self, why: String) -> UpdateError {
        UpdateError::BadAnswer {
            server: self.server,
            why,
        }
    }

    fn encode(&self, message: &Message) -> Result<Vec<u8>, UpdateError> {
        let bytes = message
            .to_vec()
            .map_err(|error| self.bad_answer(format!("cannot encode the request: {error}")))?;
        if bytes.len() > usize::from(u16::MAX) {
            return Err(self.bad_answer(format!(
                "the request is {} bytes, more than a DNS message holds",
                bytes.len()
            )));
        }
        Ok(bytes)
    }

    fn decode(&self, bytes: &[u8]) -> Result<Message, UpdateError> {
        let message = Message::from_vec(bytes)
            .map_err(|error| self.bad_answer(format!("malformed answer: {error}")))?;
        if message.metadata.message_type != MessageType::Response {
            return Err(self.bad_answer("the answer is not a response".into()));
        }
        Ok(message)
    }

    /// Sends one message (length-prefixed, RFC 1035 §4.2.2) and reads the
    /// answer with its id, within the timeout.
    async fn round_trip(&mut self, request: &[u8], id: u16) -> Result<Vec<u8>, UpdateError> {
        let server = self.server;
        let timeout = self.timeout;
        let exchange = async {
            // `encode` bounds the length.
            let length = u16::try_from(request.len()).unwrap_or(u16::MAX);
            let mut framed = Vec::with_capacity(request.len() + 2);
            framed.extend_from_slice(&length.to_be_bytes());
            framed.extend_from_slice(request);
            self.stream.write_all(&framed).await?;
            for _ in 0..STRAY_ANSWERS {
                let mut length = [0u8; 2];
                self.stream.read_exact(&mut length).await?;
                let mut answer = vec![0u8; usize::from(u16::from_be_bytes(length))];
                self.stream.read_exact(&mut answer).await?;
                if answer.len() >= 2 && u16::from_be_bytes([answer[0], answer[1]]) == id {
                    return Ok(answer);
                }
            }
            Err(std::io::Error::other(format!(
                "{STRAY_ANSWERS} answers in a row to other requests"
            )))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(source)) => Err(UpdateError::Connection { server, source }),
            Err(_) => Err(UpdateError::Timeout { server, timeout }),
        }
    }
}

/// A response code as RFCs and server logs name it (`NOTAUTH`).
pub(crate) fn mnemonic(code: ResponseCode) -> String {
    match code {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::YXDomain => "YXDOMAIN".into(),
        ResponseCode::YXRRSet => "YXRRSET".into(),
        ResponseCode::NXRRSet => "NXRRSET".into(),
        ResponseCode::NotAuth => "NOTAUTH".into(),
        ResponseCode::NotZone => "NOTZONE".into(),
        other => format!("RCODE {}", u16::from(other)),
    }
}

/// A few words on response codes an update may get.
fn describe(code: ResponseCode) -> &'static str {
    match code {
        ResponseCode::NotZone => "a name is outside the zone the server knows by that name",
        ResponseCode::ServFail => "the server failed to apply it; its log says why",
        ResponseCode::NotImp => "the server does not implement dynamic updates",
        ResponseCode::FormErr => "the server could not read the request",
        _ => "unexpected answer to an update",
    }
}
