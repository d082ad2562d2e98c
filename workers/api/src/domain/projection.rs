//! What an event may change in the read model. Events about one order arrive in any order
//! and some twice; these rules make the end state the same whatever the order:
//!
//! - the **status** follows `order.status_changed`'s per-order `sequence`: a change applies
//!   only when its sequence is above the one shown; an older one goes to the history only;
//! - before any status change arrived, `order.on_hold` and `order.accepted` give a
//!   provisional status (sequence 0), which the first status change replaces;
//! - the **header** (customer, lines, totals, `placed_at`) follows the order's `revision`: an
//!   `order.accepted` of an older revision than the one shown changes nothing; the same
//!   revision again writes the same values;
//! - an order's **item exceptions** (`order.on_hold`) are shown until an accepted header of
//!   the same or a newer revision replaces them;
//! - the **addresses** follow (revision, amendment), compared in that order, from
//!   `order.accepted` (amendment 0) and `order.address_changed` alike: an operator's change
//!   keeps the revision and counts the amendment up.

/// What the read model holds of an order, as far as the rules above need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Shown {
    /// The revision of the header shown (0: none yet).
    pub(crate) revision: u32,
    /// The revision of the addresses shown (0: none yet).
    pub(crate) address_revision: u32,
    /// The operators' amendment of the addresses shown (0: none).
    pub(crate) address_amendment: u32,
    /// The sequence of the status shown (0: none, or provisional).
    pub(crate) status_sequence: u64,
}

/// Whether a header of `revision` replaces what is shown (a new order shows
/// `Shown::default()`).
pub(crate) fn header_applies(shown: Shown, revision: u32) -> bool {
    revision >= shown.revision
}

/// Whether an `order.on_hold` of `revision` shows its item exceptions: only when no
/// accepted header of that revision or a newer one is shown (an order is accepted after its
/// exceptions are resolved, keeping its revision, so a late hold must not bring them back).
pub(crate) fn hold_applies(shown: Shown, revision: u32) -> bool {
    revision > shown.revision
}

/// Whether addresses of `revision` and `amendment` replace those shown.
pub(crate) fn addresses_apply(shown: Shown, revision: u32, amendment: u32) -> bool {
    (revision, amendment) >= (shown.address_revision, shown.address_amendment)
}

/// Whether a status change with `sequence` becomes the status shown.
pub(crate) fn status_applies(shown: Shown, sequence: u64) -> bool {
    sequence > shown.status_sequence
}

/// Whether a provisional status (from `order.on_hold` or `order.accepted`) may be shown:
/// only while no status change has arrived.
pub(crate) fn provisional_status_applies(shown: Shown) -> bool {
    shown.status_sequence == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOWN: Shown = Shown {
        revision: 2,
        address_revision: 3,
        address_amendment: 1,
        status_sequence: 5,
    };

    #[test]
    fn a_new_order_takes_everything() {
        let new = Shown::default();
        assert!(header_applies(new, 1));
        assert!(addresses_apply(new, 1, 0));
        assert!(status_applies(new, 1));
        assert!(provisional_status_applies(new));
    }

    #[test]
    fn older_and_stale_events_change_nothing() {
        assert!(!header_applies(SHOWN, 1));
        assert!(
            header_applies(SHOWN, 2),
            "the same revision again is harmless"
        );
        assert!(
            !hold_applies(SHOWN, 2),
            "accepted after the hold was resolved"
        );
        assert!(hold_applies(SHOWN, 3), "a re-push that is held again");
        assert!(hold_applies(Shown::default(), 1));
        assert!(
            !addresses_apply(SHOWN, 2, 5),
            "an older revision, whatever its amendment"
        );
        assert!(
            !addresses_apply(SHOWN, 3, 0),
            "the acceptance after an operator's change"
        );
        assert!(
            addresses_apply(SHOWN, 3, 1),
            "the same change again is harmless"
        );
        assert!(addresses_apply(SHOWN, 3, 2), "the operator's next change");
        assert!(addresses_apply(SHOWN, 4, 0));
        assert!(!status_applies(SHOWN, 4));
        assert!(!status_applies(SHOWN, 5), "a duplicate");
        assert!(status_applies(SHOWN, 6));
        assert!(!provisional_status_applies(SHOWN));
        assert!(provisional_status_applies(Shown::default()));
    }

    /// Status changes 1..=n, in every rotation and with duplicates, end at n.
    #[test]
    fn the_status_shown_is_the_newest_whatever_the_arrival_order() {
        let n = 6u64;
        for start in 0..n {
            let arrivals: Vec<u64> = (0..n * 2).map(|i| (start + i * 5) % n + 1).collect();
            let mut shown = Shown::default();
            for seq in arrivals {
                if status_applies(shown, seq) {
                    shown.status_sequence = seq;
                }
            }
            assert_eq!(shown.status_sequence, n, "start {start}");
        }
    }
}
