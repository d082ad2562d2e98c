//! A delivery ([`Incoming`]) and a worker's inputs: the message types it consumes, declared
//! once, as one enum.
//!
//! Why: which messages a worker handles used to be written three times (the routing table,
//! the handler's `match` on type strings, the lock keys read from raw JSON fields), kept in
//! step by hand, and a mismatch showed up only as a dead letter in production. Now a worker
//! declares its inputs with [`inputs!`](crate::inputs): an enum with one variant per message
//! type, holding the decoded envelope and its validated payload. From that one list come
//! - [`Inputs::TYPES`], which the host compares with the routing table before it starts the
//!   worker ([`check_routes`]; a test in the `orderly` crate does the same for every built-in
//!   worker), so a type routed to a worker that does not declare it, or declared but not
//!   routed, fails at start and in CI, never in production;
//! - [`Inputs::decode`], so the handler `match`es exhaustively on the enum: a declared type
//!   without a handler does not compile;
//! - typed lock keys: a worker derives a message's keys from the decoded payload, so a
//!   renamed contract field fails to compile instead of silently dropping a lock.
//!
//! A message is decoded once per delivery: [`Incoming::input`](crate::Incoming::input) keeps
//! the decoded value with the delivery, so the lock keys (computed first) and the handler
//! share it.

use std::any::Any;
use std::sync::{Arc, OnceLock};

use orderly_contracts::{ContractError, RawEnvelope};

/// A delivery as the handler sees it.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The envelope, payload still undecoded.
    pub envelope: RawEnvelope,
    /// Which handling attempt this is (1 for the first).
    pub attempt: u32,
    /// The worker's decoded input, once [`Incoming::input`] decoded it: the lock keys and
    /// the handler share one decoding.
    decoded: OnceLock<Arc<dyn Any + Send + Sync>>,
}

impl Incoming {
    /// A delivery of `envelope`, on its `attempt`-th handling.
    pub fn new(envelope: RawEnvelope, attempt: u32) -> Self {
        Self {
            envelope,
            attempt,
            decoded: OnceLock::new(),
        }
    }

    /// The delivery as the worker's input `I`, decoded and validated on first use and kept
    /// with the delivery (see [`crate::inputs`]).
    pub fn input<I: Inputs>(&self) -> Result<&I, InputError> {
        if let Some(input) = self.decoded.get().and_then(|d| d.downcast_ref::<I>()) {
            return Ok(input);
        }
        let input = I::decode(self)?;
        let decoded = self.decoded.get_or_init(|| Arc::new(input));
        decoded
            .downcast_ref::<I>()
            .ok_or_else(|| InputError::Unhandled {
                message_type: self.envelope.message_type.clone(),
                worker: "a handler whose input type differs from the first decoding",
            })
    }
}

/// The messages a worker consumes, as an enum decoded from the envelope. Implemented by
/// [`inputs!`](crate::inputs); not by hand.
pub trait Inputs: Sized + Send + Sync + 'static {
    /// Every message type the worker consumes, in declaration order.
    const TYPES: &'static [&'static str];

    /// Decodes and validates `msg` as the variant its type names.
    fn decode(msg: &Incoming) -> Result<Self, InputError>;
}

/// Why a delivery is not one of a worker's inputs.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InputError {
    /// A type the worker does not declare: the routing table and the worker disagree (which
    /// [`check_routes`] prevents for the built-in routes) or a producer used a wrong routing
    /// key.
    #[error("`{message_type}` is not handled by {worker}")]
    Unhandled {
        /// The delivery's type.
        message_type: String,
        /// Which enum refused it.
        worker: &'static str,
    },
    /// The declared type, but the payload breaks its contract.
    #[error("contract violation: {0}")]
    Contract(ContractError),
}

/// Whether the routing table's queue `queue` receives exactly `consumes`: `Ok` when it does
/// (or when the table has no such queue: a queue of a test or benchmark, declared by its
/// owner), else the difference in words.
pub fn check_routes(queue: &str, consumes: &[&str]) -> Result<(), String> {
    let Some(route) = orderly_contracts::routing::route(queue) else {
        return Ok(());
    };
    let unhandled: Vec<&str> = route
        .message_types
        .iter()
        .copied()
        .filter(|t| !consumes.contains(t))
        .collect();
    let unrouted: Vec<&str> = consumes
        .iter()
        .copied()
        .filter(|t| !route.receives(t))
        .collect();
    if unhandled.is_empty() && unrouted.is_empty() {
        return Ok(());
    }
    let mut problems = Vec::new();
    if !unhandled.is_empty() {
        problems.push(format!(
            "routed to `{queue}` but not handled by it: {}",
            unhandled.join(", ")
        ));
    }
    if !unrouted.is_empty() {
        problems.push(format!(
            "handled by `{queue}` but not routed to it: {}",
            unrouted.join(", ")
        ));
    }
    Err(problems.join("; "))
}

/// Declares a worker's inputs: an enum with one variant per consumed message type, each
/// holding the decoded envelope (`Envelope<P>`, payload validated), and its [`Inputs`]
/// implementation.
///
/// ```ignore
/// orderly_runtime::inputs! {
///     /// What the inventory worker consumes.
///     pub enum InventoryInput {
///         Accepted(OrderAccepted),
///         Cancelled(OrderCancelled),
///     }
/// }
/// ```
#[macro_export]
macro_rules! inputs {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident($payload:ty) ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug)]
        #[allow(clippy::large_enum_variant)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant($crate::__contracts::Envelope<$payload>), )+
        }

        impl $crate::inputs::Inputs for $name {
            const TYPES: &'static [&'static str] =
                &[ $( <$payload as $crate::__contracts::Message>::TYPE, )+ ];

            fn decode(
                msg: &$crate::inputs::Incoming,
            ) -> ::std::result::Result<Self, $crate::inputs::InputError> {
                let message_type = msg.envelope.message_type.as_str();
                $(
                    if message_type == <$payload as $crate::__contracts::Message>::TYPE {
                        return msg
                            .envelope
                            .decode_valid_ref::<$payload>()
                            .map(Self::$variant)
                            .map_err($crate::inputs::InputError::Contract);
                    }
                )+
                Err($crate::inputs::InputError::Unhandled {
                    message_type: message_type.to_owned(),
                    worker: stringify!($name),
                })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::check_routes;

    #[test]
    fn routes_and_inputs_must_agree() {
        let inventory = &orderly_contracts::routing::route("inventory")
            .expect("inventory is routed")
            .message_types;
        assert_eq!(check_routes("inventory", inventory), Ok(()));
        let fewer = &inventory[1..];
        let err = check_routes("inventory", fewer).expect_err("a routed type is missing");
        assert!(err.contains("not handled by it"), "{err}");
        assert!(err.contains(inventory[0]), "{err}");
        let mut more = inventory.to_vec();
        more.push("invoice.issued");
        let err = check_routes("inventory", &more).expect_err("an unrouted type");
        assert!(
            err.contains("handled by `inventory` but not routed to it: invoice.issued"),
            "{err}"
        );
        assert_eq!(check_routes("a-test-queue", &["anything"]), Ok(()));
    }
}
