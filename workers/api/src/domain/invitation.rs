//! When a setup's client is asked to act, and with which address.
//!
//! A setup that starts waiting for its client — entering `pending_intake` (its start, or
//! sent back to the form) or `awaiting_client` — asks the client once for that wait
//! (`setup.client_invited`, reminder 0); the setups worker's reminders ask again. A setup
//! released from a hold back into a wait does not ask again: the client was asked when the
//! wait began and their link still works.

use orderly_contracts::messages::{ClientTask, SetupStatus};

/// How long a client's link works, in days.
pub(crate) const LINK_DAYS: i64 = 14;

/// What a change from `from` to `to` asks of the client, if anything.
pub(crate) fn asks_client(from: Option<SetupStatus>, to: SetupStatus) -> Option<ClientTask> {
    if from == Some(SetupStatus::OnHold) || from == Some(to) {
        return None;
    }
    match to {
        SetupStatus::PendingIntake => Some(ClientTask::Intake),
        SetupStatus::AwaitingClient => Some(ClientTask::Approval),
        _ => None,
    }
}

/// The link's absolute address: the API's public address and the page's path.
pub(crate) fn url(public_url: &str, token: &str) -> String {
    format!("{}/setup-intake/{token}", public_url.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use SetupStatus as S;

    #[test]
    fn a_wait_that_begins_asks_the_client() {
        assert_eq!(
            asks_client(None, S::PendingIntake),
            Some(ClientTask::Intake)
        );
        assert_eq!(
            asks_client(Some(S::InProgress), S::AwaitingClient),
            Some(ClientTask::Approval)
        );
        assert_eq!(
            asks_client(Some(S::IntakeReview), S::PendingIntake),
            Some(ClientTask::Intake)
        );
    }

    #[test]
    fn nothing_else_asks() {
        assert_eq!(asks_client(Some(S::OnHold), S::AwaitingClient), None);
        assert_eq!(
            asks_client(Some(S::AwaitingClient), S::AwaitingClient),
            None
        );
        for to in [
            S::IntakeReview,
            S::InProgress,
            S::Qa,
            S::OnHold,
            S::Completed,
            S::Cancelled,
        ] {
            assert_eq!(asks_client(Some(S::PendingIntake), to), None, "{to}");
        }
    }

    #[test]
    fn the_address_joins_without_a_double_slash() {
        assert_eq!(
            url("https://orders.example/", "osi_x.y"),
            "https://orders.example/setup-intake/osi_x.y"
        );
        assert_eq!(
            url("http://127.0.0.1:8080", "t"),
            "http://127.0.0.1:8080/setup-intake/t"
        );
    }
}
