//! One trace per order: the W3C trace context of each hop, derived from the envelopes.
//!
//! Every handled message is one span of one trace: the span of worker `w` handling message
//! `m`. Its ids are *derived*, not drawn at random, so they need no state and every party
//! agrees on them:
//! - the **trace id** is the one the message's `traceparent` names; a message that comes
//!   without one (a storefront's order) starts a trace whose id is its own message id (a
//!   UUID is 16 bytes, as a trace id is), so every worker it reaches joins the same trace;
//! - the **span id** is the first 8 bytes of SHA-256 of the worker's name and the message
//!   id: two workers handling one message have two spans, and a redelivery is the same span;
//! - the **parent** is the span the `traceparent` names: the span of the hop that sent the
//!   message.
//!
//! What a handler emits carries the `traceparent` of the span that handled its cause
//! ([`Hop::child_traceparent`]), so parent links follow causation across every worker,
//! whether or not spans are exported (`crate::traces`).

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The trace context of one hop: a worker handling a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// The sender's span (none: the message started the trace).
    pub parent_span_id: Option<[u8; 8]>,
    /// Whether the trace is sampled (`traceparent` flags; a new trace is).
    pub sampled: bool,
}

impl Hop {
    /// The hop of `worker` handling the message `message_id` that came with `traceparent`.
    pub fn of(worker: &str, message_id: Uuid, traceparent: Option<&str>) -> Self {
        let span_id = span_id(worker, message_id);
        match traceparent.and_then(parse) {
            Some(parent) => Self {
                trace_id: parent.trace_id,
                span_id,
                parent_span_id: Some(parent.span_id),
                sampled: parent.sampled,
            },
            None => Self {
                trace_id: *message_id.as_bytes(),
                span_id,
                parent_span_id: None,
                sampled: true,
            },
        }
    }

    /// The `traceparent` of what this hop sends: this trace, this hop's span as parent.
    pub fn child_traceparent(&self) -> String {
        format!(
            "00-{}-{}-{}",
            hex::encode(self.trace_id),
            hex::encode(self.span_id),
            if self.sampled { "01" } else { "00" }
        )
    }
}

/// A parsed `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parent {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
}

/// Parses a version-00 `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`); `None` for anything
/// else, or the all-zero ids the specification calls invalid.
pub fn parse(traceparent: &str) -> Option<Parent> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || version != "00" || flags.len() != 2 {
        return None;
    }
    let mut trace_id = [0u8; 16];
    let mut span_id = [0u8; 8];
    hex::decode_to_slice(trace, &mut trace_id).ok()?;
    hex::decode_to_slice(span, &mut span_id).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    if trace_id == [0; 16] || span_id == [0; 8] {
        return None;
    }
    Some(Parent {
        trace_id,
        span_id,
        sampled: flags & 1 == 1,
    })
}

/// The span id of `worker` handling `message_id`.
fn span_id(worker: &str, message_id: Uuid) -> [u8; 8] {
    let digest = Sha256::new()
        .chain_update(worker.as_bytes())
        .chain_update([0])
        .chain_update(message_id.as_bytes())
        .finalize();
    let mut id = [0u8; 8];
    id.copy_from_slice(&digest[..8]);
    if id == [0; 8] {
        id[7] = 1;
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_without_a_trace_starts_one_named_by_its_id() {
        let id = Uuid::now_v7();
        let orders = Hop::of("orders", id, None);
        let api = Hop::of("api", id, None);
        assert_eq!(orders.trace_id, *id.as_bytes());
        assert_eq!(
            orders.trace_id, api.trace_id,
            "every consumer joins one trace"
        );
        assert_ne!(orders.span_id, api.span_id, "a span per worker");
        assert_eq!(orders.parent_span_id, None);
        assert_eq!(
            Hop::of("orders", id, None),
            orders,
            "a redelivery is the same span"
        );
    }

    #[test]
    fn what_a_hop_sends_is_parented_on_its_span() {
        let placed = Uuid::now_v7();
        let orders = Hop::of("orders", placed, None);
        let accepted = Uuid::now_v7();
        let inventory = Hop::of("inventory", accepted, Some(&orders.child_traceparent()));
        assert_eq!(inventory.trace_id, orders.trace_id);
        assert_eq!(inventory.parent_span_id, Some(orders.span_id));
        assert!(inventory.child_traceparent().ends_with("-01"));
    }

    #[test]
    fn a_malformed_traceparent_starts_a_new_trace() {
        let id = Uuid::now_v7();
        for bad in [
            "",
            "garbage",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b71692033-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x",
        ] {
            assert_eq!(
                Hop::of("orders", id, Some(bad)).trace_id,
                *id.as_bytes(),
                "{bad}"
            );
        }
        let good = parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00").expect("valid");
        assert!(!good.sampled);
        assert_eq!(
            hex::encode(good.trace_id),
            "0af7651916cd43dd8448eb211c80319c"
        );
    }
}
