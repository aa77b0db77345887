//! tinydns: lines of a `data` file for `tinydns-data`.
//!
//! SRV, AAAA and TXT records are generic records (`:name:type:rdata`) whose
//! record data is written byte by byte, with octal escapes (`\NNN`) for
//! anything that is not printable ASCII or that the format reserves (`:`,
//! `\`): so a TXT record keeps our 255-byte strings, where tinydns's own
//! `'` lines would cut the text into strings of 127 bytes. Networks become
//! locations (`%lo:prefix`), and every record carries its view's location.

use std::fmt::Write;
use std::net::IpAddr;

use super::file::Cidr;
use super::{AnnounceError, Data, Record, Services, Zone};

/// The lines for tinydns-data: with a `zone`, its SOA and NS records (`Z`
/// and `&` lines) first, which tinydns needs to answer at all; without,
/// only the services' records, to add to a data file that has them.
pub fn render_tinydns(services: &Services, zone: Option<&Zone>) -> Result<String, AnnounceError> {
    let mut out = String::from("# zerorpc announce: records for tinydns-data\n");
    if let Some(zone) = zone {
        zone.check(services)?;
        let _ = writeln!(
            out,
            "Z{origin}:{ns}.:hostmaster.{origin}.:{serial}:3600:600:604800:60:3600\n\
             &{origin}::{ns}.:3600",
            origin = zone.origin,
            ns = zone.nameserver,
            serial = zone.serial,
        );
        write_records(&mut out, &zone.nameserver_records(), "");
    }
    if !services.has_networks() {
        write_records(&mut out, &services.records(), "");
        return Ok(out);
    }
    let views = services.views();
    // Locations are two bytes: two base-36 digits of the view's position.
    if views.len() > 36 * 36 {
        return Err(AnnounceError::Unsupported(format!(
            "tinydns has room for {} networks, the file has {}",
            36 * 36 - 1,
            views.len() - 1
        )));
    }
    for (index, view) in views.iter().enumerate() {
        let location = location(index);
        let _ = writeln!(out, "# network {}: location {location}", view.name);
        match view.clients {
            Some(clients) => {
                for cidr in clients {
                    for prefix in prefixes(cidr)? {
                        let _ = writeln!(out, "%{location}:{prefix}");
                    }
                }
            }
            // The empty prefix matches every client; tinydns prefers the
            // longest matching prefix, so clients of a network still get
            // their network's location.
            None => {
                let _ = writeln!(out, "%{location}:");
            }
        }
        write_records(&mut out, &view.records, &location);
    }
    Ok(out)
}

fn location(index: usize) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    [DIGITS[index / 36], DIGITS[index % 36]]
        .iter()
        .map(|&b| char::from(b))
        .collect()
}

/// The prefixes tinydns matches for `cidr`: whole octets only, so a prefix
/// length that is not a multiple of 8 becomes several prefixes of the next
/// octet.
fn prefixes(cidr: &Cidr) -> Result<Vec<String>, AnnounceError> {
    let IpAddr::V4(addr) = cidr.addr else {
        return Err(AnnounceError::Unsupported(format!(
            "tinydns locations match IPv4 clients only, not {cidr}"
        )));
    };
    let octets = addr.octets();
    let whole = usize::from(cidr.len / 8);
    let head: Vec<String> = octets[..whole].iter().map(u8::to_string).collect();
    let rest = cidr.len % 8;
    if rest == 0 {
        return Ok(vec![head.join(".")]);
    }
    let first = octets[whole];
    let count = 1u16 << (8 - rest);
    Ok((0..count)
        .map(|n| {
            let mut parts = head.clone();
            parts.push((u16::from(first) + n).to_string());
            parts.join(".")
        })
        .collect())
}

fn write_records(out: &mut String, records: &[Record], location: &str) {
    for Record { owner, ttl, data } in records {
        let owner = owner.trim_end_matches('.');
        let _ = match data {
            Data::A(ip) => writeln!(out, "+{owner}:{ip}:{ttl}::{location}"),
            Data::Aaaa(ip) => {
                writeln!(out, ":{owner}:28:{}:{ttl}::{location}", octal(&ip.octets()))
            }
            Data::Srv {
                priority,
                weight,
                port,
                target,
            } => {
                let mut rdata = String::new();
                for value in [priority, weight, port] {
                    rdata.push_str(&octal(&value.to_be_bytes()));
                }
                rdata.push_str(&wire_name(target));
                writeln!(out, ":{owner}:33:{rdata}:{ttl}::{location}")
            }
            Data::Txt(strings) => {
                let mut rdata = String::new();
                for string in strings {
                    // Each string is at most 255 bytes (txt::split_txt).
                    rdata.push_str(&octal(&[u8::try_from(string.len()).unwrap_or(u8::MAX)]));
                    rdata.push_str(&escape(string.as_bytes()));
                }
                writeln!(out, ":{owner}:16:{rdata}:{ttl}::{location}")
            }
        };
    }
}

/// A name in DNS wire format (length-prefixed labels, then a zero byte),
/// escaped for a generic line.
fn wire_name(name: &str) -> String {
    let mut wire = String::new();
    for label in name.trim_end_matches('.').split('.') {
        // Labels were checked to be 1 to 63 bytes.
        wire.push_str(&octal(&[u8::try_from(label.len()).unwrap_or(63)]));
        wire.push_str(&escape(label.as_bytes()));
    }
    wire.push_str(&octal(&[0]));
    wire
}

/// Binary fields (numbers, lengths), every byte in octal, so that a reader
/// of the data file sees `\000\012` rather than a stray `(` or `<`.
fn octal(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "\\{byte:03o}");
        out
    })
}

/// Record data for a generic line: printable ASCII as is, except the field
/// separator `:` and the escape `\`; everything else (spaces included,
/// which some editors trim) as `\NNN` in octal.
fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &byte in bytes {
        match byte {
            b':' | b'\\' => {
                let _ = write!(out, "\\{byte:03o}");
            }
            0x21..=0x7e => out.push(char::from(byte)),
            _ => {
                let _ = write!(out, "\\{byte:03o}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_is_octal() {
        assert_eq!(escape(b"a:b\\c d\x05\xff"), r"a\072b\134c\040d\005\377");
    }

    #[test]
    fn prefixes_cover_a_cidr_by_whole_octets() {
        let cidr = |addr: &str, len| Cidr {
            addr: addr.parse().unwrap(),
            len,
        };
        assert_eq!(prefixes(&cidr("10.1.0.0", 16)).unwrap(), ["10.1"]);
        assert_eq!(prefixes(&cidr("0.0.0.0", 0)).unwrap(), [""]);
        assert_eq!(
            prefixes(&cidr("10.1.4.0", 22)).unwrap(),
            ["10.1.4", "10.1.5", "10.1.6", "10.1.7"]
        );
        assert!(prefixes(&cidr("fd00::", 8)).is_err());
    }

    #[test]
    fn srv_target_in_wire_format() {
        assert_eq!(wire_name("i0.a.test."), r"\002i0\001a\004test\000");
    }
}
