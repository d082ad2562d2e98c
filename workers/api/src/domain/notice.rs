//! What the read model keeps of a message to a customer: `notification.requested`, `.sent`
//! and `.failed` about one request, merged by its id whatever order they arrive in and
//! however often: what was asked (the first telling), the **first** delivery, the **newest**
//! failure. The same rule merges a batch's events before they are written and a written row
//! with a new one (`store::notifications::write`, in SQL).

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// What was asked of the notification system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Asked {
    pub(crate) recipient: String,
    pub(crate) subject: Option<String>,
    pub(crate) locale: String,
    pub(crate) at: DateTime<Utc>,
}

/// A delivery the notification system reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sent {
    pub(crate) at: DateTime<Utc>,
    pub(crate) provider: Option<String>,
}

/// A failure the notification system reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failed {
    pub(crate) at: DateTime<Utc>,
    pub(crate) error: String,
    pub(crate) permanent: bool,
}

/// Everything known of one request about an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Notice {
    pub(crate) request_id: Uuid,
    pub(crate) order_id: Uuid,
    pub(crate) channel: String,
    pub(crate) template: String,
    pub(crate) asked: Option<Asked>,
    pub(crate) sent: Option<Sent>,
    pub(crate) failed: Option<Failed>,
}

impl Notice {
    /// Adds what `other` (about the same request) tells.
    pub(crate) fn merge(&mut self, other: Notice) {
        if self.asked.is_none() {
            self.asked = other.asked;
        }
        if let Some(sent) = other.sent
            && self.sent.as_ref().is_none_or(|s| sent.at < s.at)
        {
            self.sent = Some(sent);
        }
        if let Some(failed) = other.failed
            && self.failed.as_ref().is_none_or(|f| failed.at > f.at)
        {
            self.failed = Some(failed);
        }
    }
}

/// `notices` merged per request, in the order each request first came.
pub(crate) fn merged(notices: Vec<Notice>) -> Vec<Notice> {
    let mut out: Vec<Notice> = Vec::with_capacity(notices.len());
    for n in notices {
        match out.iter_mut().find(|o| o.request_id == n.request_id) {
            Some(known) => known.merge(n),
            None => out.push(n),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("time")
    }

    fn notice(id: u128) -> Notice {
        Notice {
            request_id: Uuid::from_u128(id),
            order_id: Uuid::from_u128(99),
            channel: "email".into(),
            template: "order.shipped".into(),
            asked: None,
            sent: None,
            failed: None,
        }
    }

    #[test]
    fn the_first_delivery_and_the_newest_failure_are_kept_in_any_order() {
        let asked = Notice {
            asked: Some(Asked {
                recipient: "a@example.com".into(),
                subject: None,
                locale: "de-DE".into(),
                at: at("2026-12-01T10:00:00Z"),
            }),
            ..notice(1)
        };
        let sent = |t: &str, p: &str| Notice {
            sent: Some(Sent {
                at: at(t),
                provider: Some(p.into()),
            }),
            ..notice(1)
        };
        let failed = |t: &str, e: &str| Notice {
            failed: Some(Failed {
                at: at(t),
                error: e.into(),
                permanent: false,
            }),
            ..notice(1)
        };
        let events = [
            failed("2026-12-01T10:01:00Z", "timeout"),
            sent("2026-12-01T10:05:00Z", "ses"),
            asked.clone(),
            sent("2026-12-01T10:03:00Z", "ses-eu"),
            failed("2026-12-01T10:02:00Z", "busy"),
        ];
        let mut orders = vec![events.to_vec(), events.iter().rev().cloned().collect()];
        orders.push([events.to_vec(), events.to_vec()].concat());
        for events in orders {
            let all = merged(events);
            assert_eq!(all.len(), 1);
            let n = &all[0];
            assert_eq!(n.asked, asked.asked);
            assert_eq!(
                n.sent.as_ref().and_then(|s| s.provider.as_deref()),
                Some("ses-eu")
            );
            assert_eq!(n.failed.as_ref().map(|f| f.error.as_str()), Some("busy"));
        }
    }

    #[test]
    fn requests_stay_apart_in_the_order_they_came() {
        let all = merged(vec![notice(2), notice(1), notice(2)]);
        let ids: Vec<u128> = all.iter().map(|n| n.request_id.as_u128()).collect();
        assert_eq!(ids, [2, 1]);
    }
}
