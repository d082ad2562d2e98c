//! Who may do what: the four staff roles, the permissions each grants, and the stores a
//! caller may see.
//!
//! Why a table in code rather than rows: a permission is something the code checks, so a
//! permission nobody checks, or a role that grants one that does not exist, should fail to
//! compile; the migration's CHECK repeats the role names and a test compares the two.

use std::collections::BTreeSet;
use std::fmt;

/// What a caller may do; each endpoint names the one it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Permission {
    /// Read orders (list and detail).
    OrdersView,
    /// Change an order: address, hold and release, notes.
    OrdersEdit,
    /// Cancel an order or lines of it.
    OrdersCancel,
    /// Refund lines or an amount.
    OrdersRefund,
    /// Resolve order item exceptions.
    ExceptionsResolve,
    /// Read the audit log of staff actions.
    AuditView,
    /// See the queues and dead letters, replay and purge dead letters (the console's
    /// operations page).
    OperationsManage,
    /// Read the setups of service lines (list and detail, with their history).
    SetupsView,
    /// Move setups along: advance, return, record QA, hold and release.
    SetupsAdvance,
}

impl Permission {
    /// Every permission.
    #[cfg(test)]
    pub(crate) const ALL: [Permission; 9] = [
        Self::OrdersView,
        Self::OrdersEdit,
        Self::OrdersCancel,
        Self::OrdersRefund,
        Self::ExceptionsResolve,
        Self::AuditView,
        Self::OperationsManage,
        Self::SetupsView,
        Self::SetupsAdvance,
    ];

    /// Its name, as documented (`orders.view`).
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::OrdersView => "orders.view",
            Self::OrdersEdit => "orders.edit",
            Self::OrdersCancel => "orders.cancel",
            Self::OrdersRefund => "orders.refund",
            Self::ExceptionsResolve => "exceptions.resolve",
            Self::AuditView => "audit.view",
            Self::OperationsManage => "operations.manage",
            Self::SetupsView => "setups.view",
            Self::SetupsAdvance => "setups.advance",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A staff member's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Everything.
    OrderAdmin,
    /// Views orders and works on shipments, statuses, holds; no refunds or cancellations.
    FulfillmentTeam,
    /// Views, edits and cancels the orders of the stores assigned to them, and only those.
    AccountManager,
    /// Views orders, and views and moves along the setups of service lines.
    SetupManager,
}

impl Role {
    /// Every role.
    pub(crate) const ALL: [Role; 4] = [
        Self::OrderAdmin,
        Self::FulfillmentTeam,
        Self::AccountManager,
        Self::SetupManager,
    ];

    /// Its name as stored and typed (`order_admin`).
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::OrderAdmin => "order_admin",
            Self::FulfillmentTeam => "fulfillment_team",
            Self::AccountManager => "account_manager",
            Self::SetupManager => "setup_manager",
        }
    }

    /// The permissions the role grants.
    pub(crate) const fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            Self::OrderAdmin => &[
                OrdersView,
                OrdersEdit,
                OrdersCancel,
                OrdersRefund,
                ExceptionsResolve,
                AuditView,
                OperationsManage,
                SetupsView,
                SetupsAdvance,
            ],
            Self::FulfillmentTeam => &[OrdersView, OrdersEdit],
            // Their clients' orders: view, change and cancel (refunds are the order admins'),
            // and see how their clients' setups stand.
            Self::AccountManager => &[OrdersView, OrdersEdit, OrdersCancel, SetupsView],
            Self::SetupManager => &[OrdersView, SetupsView, SetupsAdvance],
        }
    }

    /// Whether the role grants `permission`.
    pub(crate) fn grants(self, permission: Permission) -> bool {
        self.permissions().contains(&permission)
    }

    /// Whether the role sees only the stores assigned to its holder (with none assigned, it
    /// sees nothing); the other roles see every store unless stores are assigned.
    pub(crate) const fn needs_assigned_stores(self) -> bool {
        matches!(self, Self::AccountManager)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    /// `order_admin`, `order-admin` and `Order Admin` are all the Order Admin.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key: String = s
            .trim()
            .chars()
            .map(|c| {
                if c == '-' || c == ' ' {
                    '_'
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect();
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == key)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|r| r.as_str()).collect();
                format!("unknown role `{s}`, expected one of: {}", known.join(", "))
            })
    }
}

/// The stores a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Every store.
    All,
    /// Only these (possibly none).
    Stores(BTreeSet<String>),
}

impl Scope {
    /// The scope of a staff member with `role` and `assigned` stores.
    pub(crate) fn of(role: Role, assigned: BTreeSet<String>) -> Self {
        if assigned.is_empty() && !role.needs_assigned_stores() {
            Self::All
        } else {
            Self::Stores(assigned)
        }
    }

    /// Whether `store` is visible.
    pub(crate) fn sees(&self, store: &str) -> bool {
        match self {
            Self::All => true,
            Self::Stores(stores) => stores.contains(store),
        }
    }

    /// The stores a list may return: those `requested` (none: all) that the scope sees.
    /// `None` means every store; `Some` of an empty list means nothing at all.
    pub(crate) fn narrow(&self, requested: &[String]) -> Option<Vec<String>> {
        match (self, requested.is_empty()) {
            (Self::All, true) => None,
            (Self::All, false) => Some(requested.to_vec()),
            (Self::Stores(stores), true) => Some(stores.iter().cloned().collect()),
            (Self::Stores(stores), false) => Some(
                requested
                    .iter()
                    .filter(|s| stores.contains(*s))
                    .cloned()
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stores(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn every_role_views_orders_and_only_the_order_admin_refunds() {
        for role in Role::ALL {
            assert!(role.grants(Permission::OrdersView), "{role}");
            assert_eq!(
                role.grants(Permission::OrdersRefund),
                role == Role::OrderAdmin,
                "{role}"
            );
        }
        assert_eq!(Role::OrderAdmin.permissions(), &Permission::ALL);
        assert!(!Role::SetupManager.grants(Permission::OrdersEdit));
        assert!(!Role::FulfillmentTeam.grants(Permission::OrdersCancel));
    }

    #[test]
    fn roles_are_read_as_people_write_them() {
        assert_eq!("Order Admin".parse::<Role>(), Ok(Role::OrderAdmin));
        assert_eq!("account-manager".parse::<Role>(), Ok(Role::AccountManager));
        let err = "admin".parse::<Role>().expect_err("unknown");
        assert!(err.contains("order_admin"), "{err}");
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
    }

    #[test]
    fn the_migration_knows_every_role() {
        let sql = include_str!("../../../../migrations/20261206000040_api.sql");
        for role in Role::ALL {
            assert!(sql.contains(&format!("'{role}'")), "{role}");
        }
    }

    #[test]
    fn an_account_manager_sees_only_assigned_stores_others_all_unless_scoped() {
        assert_eq!(
            Scope::of(Role::AccountManager, BTreeSet::new()),
            Scope::Stores(BTreeSet::new())
        );
        assert!(!Scope::of(Role::AccountManager, BTreeSet::new()).sees("shop-de"));
        assert_eq!(Scope::of(Role::OrderAdmin, BTreeSet::new()), Scope::All);
        let scoped = Scope::of(Role::FulfillmentTeam, stores(&["shop-de"]));
        assert!(scoped.sees("shop-de"));
        assert!(!scoped.sees("bol-nl"));
    }

    #[test]
    fn a_store_filter_is_narrowed_to_the_scope() {
        let all = Scope::All;
        assert_eq!(all.narrow(&[]), None);
        assert_eq!(
            all.narrow(&["bol-nl".to_owned()]),
            Some(vec!["bol-nl".to_owned()])
        );
        let de = Scope::Stores(stores(&["shop-de"]));
        assert_eq!(de.narrow(&[]), Some(vec!["shop-de".to_owned()]));
        assert_eq!(de.narrow(&["bol-nl".to_owned()]), Some(vec![]));
        assert_eq!(
            Scope::Stores(BTreeSet::new()).narrow(&[]),
            Some(vec![]),
            "nothing assigned: nothing seen"
        );
    }
}
