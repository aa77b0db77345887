//! `-d/--debug`: every event sent and received, on stderr, in
//! zerorpc-python's `--> name {header} args` shape.

use zerorpc::transport::EventHook;
use zerorpc::wire::Event;

/// Prints events as they pass.
pub(crate) struct Printer;

impl EventHook for Printer {
    fn on_send(&self, event: &mut Event) {
        eprintln!("--> {} {:?} {}", event.name, event.header, event.args);
    }

    fn on_receive(&self, event: &Event) {
        eprintln!("<-- {} {:?} {}", event.name, event.header, event.args);
    }
}
