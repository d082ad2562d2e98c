//! The inventory worker: stock per SKU and warehouse, reservations for orders, backorders.
//!
//! It owns (schema `inventory`):
//! - `stock`: on hand and reserved per SKU and warehouse (available = on hand − reserved),
//!   changed **only** through `movements`, an append-only ledger in which every change has a
//!   kind (adjustment, reservation, release, dispatch) and the business fact that caused it
//!   (unique, so each fact applies once whatever message carries it);
//! - `reservations` per order line and warehouse, `orders` (inventory's state of each order)
//!   and `backorders` (orders waiting for stock, served oldest first);
//! - `levels`, one row per SKU: the SKU's lock and the sequence of its `stock.level_changed`;
//! - `warehouses` (with a preference `priority`) and `products` (GTINs, from the catalog).
//!
//! Messages in: `order.accepted` (reserve all lines or backorder), `order.cancelled`
//! (release), `shipment.dispatched` (reservation becomes a deduction), `inventory.adjusted`
//! (counts and deltas; then backorders are retried), `catalog.product_upserted`. Out:
//! `stock.reserved`, `stock.unavailable`, `stock.released`, and one `stock.level_changed` per
//! SKU whose stock (on hand, reserved or available) a message changed.
//!
//! Products the catalog marks `stock_tracked: false` (gift cards, downloads, services) are
//! always available and never reserved, counted or deducted: their lines ride unreserved
//! with the order's first warehouse (or the most preferred warehouse when the order has
//! nothing else), so fulfillment ships them with the goods.
//!
//! Why it is safe to run many copies: every decision about a SKU is made while holding the
//! SKU's `levels` row lock and its locked `stock` rows, taken in one global order (see
//! [`store`]), and written in the same transaction as the messages it emits. Two handlers
//! can never promise the same unit; the `stock` CHECK constraint is the last line of
//! defence, and [`consistency_check`] proves after the fact that stock equals its ledger.
//! The runtime puts a batch of messages in one transaction, and batches that lock SKUs in
//! arrival order deadlock each other on multi-SKU orders; so the handler declares lock keys
//! (`Handler::lock_keys`: the order and its SKUs, or all of stock for adjustments and
//! releases, which serve backorders they cannot name in advance) and the runtime takes them
//! sorted before the batch runs: batches on different SKUs run side by side, batches on the
//! same SKU take turns, and none deadlock.
//!
//! Layers: [`domain`] decides (pure), [`store`] reads and writes (SQL), [`handlers`] glues
//! them to messages.

mod domain;
mod handlers;
pub mod store;

pub use handlers::{InventoryHandler, InventoryInput};
pub use store::consistency_check;

/// The worker's name: its queue, its schema, the producer of what it emits.
pub const NAME: &str = "inventory";
