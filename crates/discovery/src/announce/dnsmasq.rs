//! dnsmasq: lines of a configuration file (`--conf-file`), each of which
//! is also a command-line option when prefixed with `--`.

use std::fmt::Write;

use super::{AnnounceError, Data, Services};

/// The longest line dnsmasq reads from a configuration file (2.90: longer
/// lines are cut, and the option then fails or, worse, loses its end).
const MAX_LINE: usize = 1024;

/// `srv-host=`, `host-record=` and `txt-record=` lines for the services.
///
/// dnsmasq answers every client alike, so a file with networks is refused.
/// It has no TTL for SRV and TXT records (they get `local-ttl`, 0 unless
/// set); host records get the service's TTL.
pub fn render_dnsmasq(services: &Services) -> Result<String, AnnounceError> {
    if services.has_networks() {
        return Err(AnnounceError::Unsupported(
            "dnsmasq gives every client the same answers, so it cannot announce a services \
             file with networks: use --format bind (views) or tinydns (locations)"
                .into(),
        ));
    }
    let mut out = String::from("# zerorpc announce: options for dnsmasq (--conf-file)\n");
    for record in services.records() {
        let owner = record.owner.trim_end_matches('.');
        let line = match &record.data {
            Data::Srv {
                priority,
                weight,
                port,
                target,
            } => format!(
                "srv-host={owner},{},{port},{priority},{weight}",
                target.trim_end_matches('.')
            ),
            Data::A(ip) => format!("host-record={owner},{ip},{}", record.ttl),
            Data::Aaaa(ip) => format!("host-record={owner},{ip},{}", record.ttl),
            // One quoted option value per string: dnsmasq makes each
            // comma-separated value a string of the record, and a comma
            // inside quotes is text.
            Data::Txt(strings) => {
                let quoted: Vec<String> = strings.iter().map(|s| quote(s)).collect();
                format!("txt-record={owner},{}", quoted.join(","))
            }
        };
        if line.len() > MAX_LINE {
            return Err(AnnounceError::Unsupported(format!(
                "dnsmasq reads lines of at most {MAX_LINE} characters, and the record of {owner} \
                 needs {}: shorten its metadata or endpoints, or use --format bind or tinydns",
                line.len()
            )));
        }
        let _ = writeln!(out, "{line}");
    }
    Ok(out)
}

/// A quoted dnsmasq value: inside quotes dnsmasq turns `\\` and `\"` into
/// `\` and `"` (and `\t`, `\n`... into controls, which JSON never leaves
/// raw) and keeps `,` `#` `;` and UTF-8 as they are.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoting() {
        assert_eq!(super::quote(r#"{"a":"\\"}"#), r#""{\"a\":\"\\\\\"}""#);
    }
}
