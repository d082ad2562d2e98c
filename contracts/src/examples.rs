//! The golden examples' story and cast: the ids, people, addresses and envelope helper that
//! every message type's golden example (written next to its type, in the `golden` module of
//! `messages/<area>.rs`) shares.
//!
//! The examples follow one German storefront order (`shop-de` #100234, Jörg Schäfer in Berlin, two
//! lines in EUR) from checkout to refund, with the roads not taken (no stock, a cancellation
//! before dispatch, a failed delivery attempt), plus an Amazon order that goes on hold over
//! an unknown GTIN. They are committed as `docs/contracts/examples/<type>.v1.json`, and a test
//! decodes and validates every one, so they are always correct documentation.
//!
//! Written as JSON rather than built from the types on purpose: that is what other teams
//! read and send, and a type change that silently alters the wire form makes the committed
//! example stop matching.

use serde_json::{Value, json};

use crate::envelope::Message;

pub(crate) const STORE: &str = "shop-de";
pub(crate) const ORDER: &str = "0195f3a0-7c4e-7b1a-9d2e-3f4a5b6c7d8e";
pub(crate) const MARKETPLACE_ORDER: &str = "0195f3a1-1e2f-7a3b-8c4d-5e6f7a8b9c0d";
pub(crate) const EXCEPTION: &str = "0195f3a1-2f3a-7b4c-9d5e-6f7a8b9c0d1e";
pub(crate) const CANCEL_REQUEST: &str = "0195f3a0-9a8b-7c6d-8e5f-4a3b2c1d0e9f";
pub(crate) const SHIPMENT: &str = "0195f3a2-4b5c-7d6e-8f70-8192a3b4c5d6";
pub(crate) const INVOICE_REQUEST: &str = "0195f3a3-0a1b-7c2d-9e3f-4a5b6c7d8e9f";
pub(crate) const INVOICE: &str = "0195f3a3-5f60-7718-8293-a4b5c6d7e8f9";
pub(crate) const REFUND_REQUEST: &str = "0195f3a4-0b1c-7d2e-8f3a-4b5c6d7e8f90";
pub(crate) const NOTE_REQUEST: &str = "0195f3a6-2c3d-7e4f-8a5b-6c7d8e9f0a1b";
pub(crate) const RESEND_REQUEST: &str = "0195f3a6-3d4e-7f50-8b6c-7d8e9f0a1b2c";
pub(crate) const HOLD_REQUEST: &str = "0195f3a6-4e5f-7061-8c7d-8e9f0a1b2c3d";
pub(crate) const RELEASE_REQUEST: &str = "0195f3a6-5f60-7172-8d8e-9f0a1b2c3d4e";
pub(crate) const ADDRESS_REQUEST: &str = "0195f3a6-6071-7283-8e9f-0a1b2c3d4e5f";
pub(crate) const CREDIT_NOTE: &str = "0195f3a4-1a2b-7c3d-8e4f-5a6b7c8d9e0f";
pub(crate) const NOTIFICATION: &str = "0195f3a5-3c4d-7e5f-8a6b-7c8d9e0f1a2b";
pub(crate) const SETUP: &str = "0195f3a7-1a2b-7c3d-8e4f-5a6b7c8d9e0f";
pub(crate) const SETUP_REQUEST: &str = "0195f3a7-2b3c-7d4e-8f50-6a7b8c9d0e1f";
pub(crate) const TRACKING: &str = "00340434161094042557";
/// The trace of the checkout, carried through the saga.
pub(crate) const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// Envelope metadata of one example.
pub(crate) struct Meta {
    /// Last two hex digits of the message id.
    pub(crate) n: u8,
    pub(crate) correlation: &'static str,
    pub(crate) causation: Option<u8>,
    pub(crate) at: &'static str,
    pub(crate) producer: &'static str,
    /// Span id for the trace context; `None` for messages from outside Orderly.
    pub(crate) span: Option<&'static str>,
}

pub(crate) fn message_id(n: u8) -> String {
    format!("0195f3a0-8000-7000-8000-0000000000{n:02x}")
}

pub(crate) fn envelope<P: Message>(meta: Meta, payload: Value) -> Value {
    let mut envelope = json!({
        "message_id": message_id(meta.n),
        "message_type": P::TYPE,
        "schema_version": P::VERSION,
        "correlation_id": meta.correlation,
        "occurred_at": meta.at,
        "producer": meta.producer,
        "payload": payload
    });
    if let Some(object) = envelope.as_object_mut() {
        if let Some(cause) = meta.causation {
            object.insert("causation_id".into(), message_id(cause).into());
        }
        if let Some(span) = meta.span {
            object.insert(
                "trace".into(),
                json!({ "traceparent": format!("00-{TRACE_ID}-{span}-01") }),
            );
        }
    }
    envelope
}

pub(crate) fn customer() -> Value {
    json!({
        "id": "C-48213",
        "email": "joerg.schaefer@example.de",
        "name": "Jörg Schäfer",
        "locale": "de-DE",
        "is_business": false
    })
}

pub(crate) fn contact() -> Value {
    json!({ "name": "Jörg Schäfer", "email": "joerg.schaefer@example.de", "locale": "de-DE" })
}

pub(crate) fn billing_address() -> Value {
    json!({
        "name": "Jörg Schäfer",
        "lines": ["Hauptstraße 12"],
        "postal_code": "10115",
        "city": "Berlin",
        "country": "DE"
    })
}

pub(crate) fn shipping_address() -> Value {
    json!({
        "name": "Jörg Schäfer",
        "lines": ["Müllerstraße 138", "Hinterhaus, 3. OG"],
        "postal_code": "13353",
        "city": "Berlin",
        "country": "DE",
        "phone": "+49 30 1234567"
    })
}

pub(crate) fn payment() -> Value {
    json!({ "status": "authorized", "method": "card", "reference": "psp_8f2c1e77a9" })
}

/// A PDF as invoicing announces it: `folder` is `invoices` or `credit-notes`.
pub(crate) fn pdf(folder: &str, number: &str, sha256: &str, size_bytes: u64) -> Value {
    json!({
        "uri": format!("orderly://invoicing/{folder}/{number}.pdf"),
        "media_type": "application/pdf",
        "sha256": sha256,
        "size_bytes": size_bytes,
        "key": format!("{folder}/{STORE}/{number}.pdf")
    })
}

pub(crate) fn buyer() -> Value {
    json!({ "name": "Jörg Schäfer", "country": "DE", "email": "joerg.schaefer@example.de" })
}

pub(crate) const WEBHOOK_ENDPOINT: &str = "0195f3a6-1b2c-7d3e-8f40-5a6b7c8d9e0f";
