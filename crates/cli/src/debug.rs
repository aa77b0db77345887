//! `-d/--debug`: every event sent and received, on stderr, in
//! zerorpc-python's `--> name {header} args` shape.

use zerorpc::transport::EventHook;
use zerorpc::wire::Event;

use crate::exit::stderr_line;

/// Prints events as they pass.
pub(crate) struct Printer;

impl EventHook for Printer {
    fn on_send(&self, event: &mut Event) {
        stderr_line(format_args!(
            "--> {} {:?} {}",
            event.name, event.header, event.args
        ));
    }

    fn on_receive(&self, event: &Event) {
        stderr_line(format_args!(
            "<-- {} {:?} {}",
            event.name, event.header, event.args
        ));
    }
}
