//! Whether a store takes a new order: it must be declared (`store.upserted`) and open.

use orderly_contracts::types::StoreId;

/// Why a new order for `store` is not taken, given whether the store is declared and open
/// (`None`: never declared); `None` if it is taken. Orders already taken go on either way.
pub(crate) fn store_refusal(store: &StoreId, open: Option<bool>) -> Option<String> {
    match open {
        Some(true) => None,
        Some(false) => Some(format!(
            "store `{store}` is closed (its store.upserted says active: false): it takes no new orders"
        )),
        None => Some(format!(
            "store `{store}` is not declared: send its store.upserted, then replay this order"
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn only_a_declared_open_store_takes_new_orders() {
        let store = StoreId::parse("shop-de").unwrap();
        assert_eq!(store_refusal(&store, Some(true)), None);
        let closed = store_refusal(&store, Some(false)).unwrap();
        assert!(closed.contains("`shop-de` is closed"), "{closed}");
        let unknown = store_refusal(&store, None).unwrap();
        assert!(unknown.contains("`shop-de` is not declared"), "{unknown}");
    }
}
