//! BIND: zone-file records, complete zone files, and views.

use std::fmt::Write;

use super::{AnnounceError, Data, Record, Services, Zone};

/// The records of a file without networks, with absolute names, for a zone
/// file to `$INCLUDE` (or to paste into one).
pub fn render_bind_records(services: &Services) -> Result<String, AnnounceError> {
    no_networks(services)?;
    let mut out = String::from("; zerorpc announce: records to include in a zone file\n");
    write_records(&mut out, &services.records());
    Ok(out)
}

/// A complete zone file (SOA, NS, then the records) for a file without
/// networks.
pub fn render_bind_zone(services: &Services, zone: &Zone) -> Result<String, AnnounceError> {
    no_networks(services)?;
    zone.check(services)?;
    zone_file(zone, &services.records())
}

fn no_networks(services: &Services) -> Result<(), AnnounceError> {
    if services.has_networks() {
        return Err(AnnounceError::Unsupported(
            "the services file has networks: BIND then needs a view per network, \
             each with a zone file of its own (give a zone and a directory for the files)"
                .into(),
        ));
    }
    Ok(())
}

/// BIND views for a file with networks: a named.conf fragment and the
/// zone file of each view.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BindViews {
    /// The `view` statements, for named.conf.
    pub named_conf: String,
    /// Each view's zone file: its file name (in the directory given to
    /// [`render_bind_views`]) and its text.
    pub files: Vec<(String, String)>,
}

/// One view per network (in file order, matching its client addresses),
/// then the view `default` for every other client; each holds `zone`, from
/// a file `ZONE.VIEW.zone` in `dir`, where named will look for it.
pub fn render_bind_views(
    services: &Services,
    zone: &Zone,
    dir: &str,
) -> Result<BindViews, AnnounceError> {
    zone.check(services)?;
    let mut named_conf = String::from(
        "// zerorpc announce: one view per network, in order, then every other client.\n\
         // Every zone of this server must be in a view once views are used.\n",
    );
    let mut files = Vec::new();
    let dir = dir.trim_end_matches('/');
    for view in services.views() {
        let file_name = format!("{}.{}.zone", zone.origin, view.name);
        let clients = match view.clients {
            Some(clients) => clients
                .iter()
                .map(|cidr| format!("{cidr}; "))
                .collect::<String>(),
            None => "any; ".to_owned(),
        };
        let _ = write!(
            named_conf,
            "view \"{name}\" {{\n    match-clients {{ {clients}}};\n    zone \"{origin}\" {{\n        \
             type primary;\n        file \"{dir}/{file_name}\";\n    }};\n}};\n",
            name = view.name,
            origin = zone.origin,
        );
        files.push((file_name, zone_file(zone, &view.records)?));
    }
    Ok(BindViews { named_conf, files })
}

fn zone_file(zone: &Zone, records: &[Record]) -> Result<String, AnnounceError> {
    zone.require_glue()?;
    let origin = &zone.origin;
    let mut out = format!(
        "; zerorpc announce: zone {origin}\n$ORIGIN {origin}.\n\
         {origin}. 3600 IN SOA {ns}. hostmaster.{origin}. {serial} 3600 600 604800 60\n\
         {origin}. 3600 IN NS {ns}.\n",
        ns = zone.nameserver,
        serial = zone.serial,
    );
    write_records(&mut out, &zone.nameserver_records());
    write_records(&mut out, records);
    Ok(out)
}

fn write_records(out: &mut String, records: &[Record]) {
    for record in records {
        let Record { owner, ttl, data } = record;
        let _ = match data {
            Data::Srv {
                priority,
                weight,
                port,
                target,
            } => writeln!(
                out,
                "{owner} {ttl} IN SRV {priority} {weight} {port} {target}"
            ),
            Data::A(ip) => writeln!(out, "{owner} {ttl} IN A {ip}"),
            Data::Aaaa(ip) => writeln!(out, "{owner} {ttl} IN AAAA {ip}"),
            Data::Txt(strings) => {
                let quoted: Vec<String> = strings.iter().map(|s| quote(s)).collect();
                writeln!(out, "{owner} {ttl} IN TXT {}", quoted.join(" "))
            }
        };
    }
}

/// A zone-file character string: `"` and `\` escaped with a backslash,
/// bytes outside printable ASCII as `\DDD` (decimal), so the file is ASCII
/// whatever the metadata holds.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for byte in text.bytes() {
        match byte {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(byte));
            }
            0x20..=0x7e => out.push(char::from(byte)),
            _ => {
                let _ = write!(out, "\\{byte:03}");
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quoting_escapes_quotes_backslashes_and_non_ascii() {
        assert_eq!(quote(r#"{"a":"b\\c"}"#), r#""{\"a\":\"b\\\\c\"}""#);
        assert_eq!(quote("é;\n"), r#""\195\169;\010""#);
    }
}
