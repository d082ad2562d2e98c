//! An operator's hold: whether an order may be put on hold or released now.
//!
//! A hold stops what is still to be shipped, so it needs something left to ship: an order
//! that is cancelled, completed, or whose every shipment has left cannot be held. A hold is
//! not a status (the order's status goes on as it was): it is a flag beside it, with its
//! own per-order count of changes.

use orderly_contracts::types::OrderStatus;

/// Whether an order at `status`, `held` or not, may be put on hold; `Err` says why not.
pub(crate) fn check_hold(status: OrderStatus, held: bool) -> Result<(), String> {
    if held {
        return Err("the order is already on hold".to_owned());
    }
    match status {
        OrderStatus::Cancelled | OrderStatus::Completed => {
            Err(format!("the order is {status}: nothing left to hold"))
        }
        OrderStatus::Shipped | OrderStatus::Delivered => Err(format!(
            "the order is {status}: every shipment has left the warehouse, nothing left to hold"
        )),
        OrderStatus::Accepted
        | OrderStatus::OnHold
        | OrderStatus::Backordered
        | OrderStatus::Processing
        | OrderStatus::PartiallyShipped => Ok(()),
    }
}

/// Whether a `held` order may be released; `Err` says why not.
pub(crate) fn check_release(held: bool) -> Result<(), String> {
    if held {
        Ok(())
    } else {
        Err("the order is not on hold".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_can_be_held_while_something_is_left_to_ship() {
        for s in [
            OrderStatus::Accepted,
            OrderStatus::OnHold,
            OrderStatus::Backordered,
            OrderStatus::Processing,
            OrderStatus::PartiallyShipped,
        ] {
            assert!(check_hold(s, false).is_ok(), "{s}");
            assert!(check_hold(s, true).is_err(), "{s}: held twice");
        }
        for s in [
            OrderStatus::Shipped,
            OrderStatus::Delivered,
            OrderStatus::Completed,
            OrderStatus::Cancelled,
        ] {
            let why = check_hold(s, false).expect_err("nothing left");
            assert!(why.contains(s.as_str()), "{why}");
        }
    }

    #[test]
    fn only_a_held_order_is_released() {
        assert!(check_release(true).is_ok());
        assert_eq!(
            check_release(false).expect_err("not held"),
            "the order is not on hold"
        );
    }
}
