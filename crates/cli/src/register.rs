//! Dynamic DNS registration (RFC 2136 UPDATE signed with TSIG): a served
//! file's endpoints kept in a zone while `zerorpc --server --announce`
//! runs, and `zerorpc announce FILE --update/--withdraw`. The updates are
//! zerorpc-discovery's; this is the front end: reading the key file and
//! explaining failures with the exit statuses of docs/cli.md.

use zerorpc_discovery::announce::Services;
use zerorpc_discovery::{
    KeyFileError, Registration, RegistrationBuilder, TsigKey, UpdateError, Updater,
};

use crate::args::{RegisterArgs, UpdateTarget};
use crate::exit::{Failure, chain, code, stderr_line};

/// What `zerorpc announce` does to a zone.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Change {
    Add,
    Withdraw,
}

fn updater(target: &UpdateTarget) -> Result<Updater, Failure> {
    let key = TsigKey::from_file(&target.key_file).map_err(key_failure)?;
    Updater::new(target.server, &target.zone, key).map_err(update_failure)
}

fn key_failure(error: KeyFileError) -> Failure {
    Failure::usage(chain(&error))
}

/// What the user asked for is wrong (exit status 2), or the name server
/// said no or could not be reached (5, like other endpoints).
fn update_failure(error: UpdateError) -> Failure {
    let code = match error {
        UpdateError::Invalid(_) | UpdateError::Announce(_) => code::USAGE,
        UpdateError::Thread(_) => code::LOCAL,
        _ => code::TRANSPORT,
    };
    Failure::Local {
        code,
        message: chain(&error),
    }
}

/// `zerorpc announce FILE --update/--withdraw`.
pub(crate) fn update_file(
    target: &UpdateTarget,
    services: &Services,
    shown: &str,
    change: Change,
) -> Result<(), Failure> {
    let updater = updater(target)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::local(format!("cannot start the async runtime: {e}")))?;
    let (done, verb) = match change {
        Change::Add => (runtime.block_on(updater.register(services)), "added to"),
        Change::Withdraw => (
            runtime.block_on(updater.withdraw(services)),
            "withdrawn from",
        ),
    };
    done.map_err(|e| match e {
        UpdateError::Invalid(_) | UpdateError::Announce(_) => {
            Failure::usage(format!("{shown}: {}", chain(&e)))
        }
        other => update_failure(other),
    })?;
    stderr_line(format_args!(
        "the services of {shown} were {verb} zone {} at {}",
        updater.zone(),
        updater.server()
    ));
    Ok(())
}

/// `--server --announce`, before the server starts: the key file read, so
/// that a bad one stops the server before it binds.
pub(crate) fn prepare(args: &RegisterArgs) -> Result<RegistrationBuilder, Failure> {
    let mut builder = Registration::builder(updater(&args.target)?, &args.name)
        .ttl(args.ttl)
        .priority(args.priority)
        .weight(args.weight);
    if let Some(instance) = &args.instance {
        builder = builder.instance(instance);
    }
    if let Some(address) = args.address {
        builder = builder.address(address);
    }
    Ok(builder)
}

/// `--server --announce`: registers the bound endpoints. Blocks until the
/// name server has answered.
pub(crate) fn register_server(
    args: &RegisterArgs,
    builder: RegistrationBuilder,
    bound: &[String],
) -> Result<Registration, Failure> {
    let registration = builder.register(bound).map_err(update_failure)?;
    stderr_line(format_args!(
        "announced \"{}\" in zone {} at {} as instance {}: {}",
        args.name,
        args.target.zone,
        args.target.server,
        registration.instance(),
        registration.endpoints().join(", ")
    ));
    Ok(registration)
}

/// Withdraws the server's records; blocks until the name server answered.
pub(crate) fn withdraw_server(
    args: &RegisterArgs,
    registration: Registration,
) -> Result<(), Failure> {
    registration.withdraw().map_err(|e| {
        let failure = update_failure(e);
        Failure::Local {
            code: failure.code(),
            message: format!(
                "the records of \"{}\" stay in zone {}: {failure}",
                args.name, args.target.zone
            ),
        }
    })?;
    stderr_line(format_args!(
        "withdrew \"{}\" from zone {}",
        args.name, args.target.zone
    ));
    Ok(())
}
