//! `zerorpc announce`: a services file printed as records for a DNS server,
//! or added to a zone with dynamic updates (`--update`, `--withdraw`).
//!
//! The records come from zerorpc-discovery's `announce` module; this is
//! the front end: reading the file, choosing the output, writing the zone
//! files of BIND views.

use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use zerorpc_discovery::announce::{self, AnnounceError, Services, Zone};

use crate::args::{AnnounceAction, DnsFormat, RawAnnounceArgs};
use crate::exit::{self, Failure};
use crate::register::Change;

/// Prints the records on stdout (and, for BIND views, writes zone files),
/// or adds them to or withdraws them from a zone.
pub(crate) fn run(args: RawAnnounceArgs) -> Result<(), Failure> {
    let shown = args.file.display().to_string();
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| Failure::usage(format!("cannot read the services file {shown}: {e}")))?;
    let in_file = |e: AnnounceError| Failure::usage(format!("{shown}: {e}"));
    let services = announce::parse_services(&text).map_err(in_file)?;
    let format = match args.action()? {
        AnnounceAction::Print(format) => format,
        AnnounceAction::Update(target) => {
            return crate::register::update_file(&target, &services, &shown, Change::Add);
        }
        AnnounceAction::Withdraw(target) => {
            return crate::register::update_file(&target, &services, &shown, Change::Withdraw);
        }
    };
    let zone = match (&args.zone, &args.nameserver) {
        (Some(origin), Some(nameserver)) => {
            let serial = args.serial.unwrap_or_else(unix_time);
            let mut zone = Zone::new(origin, nameserver, serial);
            if let Some(address) = args.nameserver_address {
                zone = zone.and_then(|zone| zone.with_nameserver_address(address));
            }
            Some(zone.map_err(|e| Failure::usage(e.to_string()))?)
        }
        // clap makes --zone and --nameserver go together.
        _ => None,
    };
    let output = match format {
        DnsFormat::Bind if services.has_networks() => {
            bind_views(&services, zone.as_ref(), args.out_dir.as_deref(), &shown)?
        }
        DnsFormat::Bind => {
            if args.out_dir.is_some() {
                return Err(Failure::usage(format!(
                    "--out-dir is for a services file with networks (BIND views), and {shown} has none"
                )));
            }
            match &zone {
                Some(zone) => announce::render_bind_zone(&services, zone),
                None => announce::render_bind_records(&services),
            }
            .map_err(in_file)?
        }
        DnsFormat::Tinydns => {
            announce::render_tinydns(&services, zone.as_ref()).map_err(in_file)?
        }
        DnsFormat::Dnsmasq => announce::render_dnsmasq(&services).map_err(in_file)?,
    };
    let mut out = std::io::stdout().lock();
    out.write_all(output.as_bytes())
        .and_then(|()| out.flush())
        .map_err(exit::output_error)
}

/// Writes a zone file per view into `out_dir`; returns the named.conf
/// fragment that loads them.
fn bind_views(
    services: &Services,
    zone: Option<&Zone>,
    out_dir: Option<&Path>,
    shown: &str,
) -> Result<String, Failure> {
    let (Some(zone), Some(out_dir)) = (zone, out_dir) else {
        return Err(Failure::usage(format!(
            "{shown} has networks, so --format bind writes a BIND view per network, each with \
             a zone file of its own: give --zone ZONE --nameserver HOST --out-dir DIR"
        )));
    };
    std::fs::create_dir_all(out_dir).map_err(|e| {
        Failure::local(format!(
            "cannot create the directory {}: {e}",
            out_dir.display()
        ))
    })?;
    // named reads the files from its own working directory: the fragment
    // names them by absolute path.
    let dir = out_dir.canonicalize().map_err(|e| {
        Failure::local(format!(
            "cannot resolve the directory {}: {e}",
            out_dir.display()
        ))
    })?;
    let dir_text = dir.to_str().ok_or_else(|| {
        Failure::usage(format!(
            "--out-dir {}: named.conf needs a directory name in UTF-8",
            dir.display()
        ))
    })?;
    if dir_text.contains('"') {
        return Err(Failure::usage(format!(
            "--out-dir {dir_text}: a quote in the directory name cannot be written in named.conf"
        )));
    }
    let views = announce::render_bind_views(services, zone, dir_text)
        .map_err(|e| Failure::usage(format!("{shown}: {e}")))?;
    for (name, text) in &views.files {
        let path = dir.join(name);
        std::fs::write(&path, text)
            .map_err(|e| Failure::local(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(views.named_conf)
}

/// The default SOA serial: seconds since 1970, so each run's is larger
/// (until 2106, when serial arithmetic keeps it working anyway).
fn unix_time() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_secs() as u32)
}
