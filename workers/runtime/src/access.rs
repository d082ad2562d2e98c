//! Least privilege: what each worker's own broker user and database role may touch.
//!
//! A worker owns its queues and its schema, and nothing else (docs/architecture.md). These
//! functions turn that rule into credentials, so that a worker that tried to read another's
//! queue or tables would be refused by the broker or the database, not merely not do it:
//!
//! - **Broker**: user `<namespace>-<worker>`, with permissions on the virtual host as
//!   RabbitMQ's three regular expressions. *configure* and *read*/*write* on its own names
//!   (`<ns>.<worker>.…`: partitions and their exchanges, delay queues and their exchange,
//!   dead-letter queue); *write* on the events exchange (it publishes events) and the
//!   dead-letter exchange (it dead-letters with a reason); *read* on the same two (binding
//!   its own queues to them needs it). The operations worker (`api`, whose console lists,
//!   replays and purges every worker's dead letters) may also read every dead-letter queue
//!   and write to every partition exchange (where a replay goes). No worker may publish to
//!   the default exchange, through which it could put a message into any queue: retries go
//!   to the worker's own delay exchange ([`crate::broker::Names::delay_exchange`]).
//! - **Database**: role `orderly_<worker>`, a member of `orderly_workers`, with usage of its
//!   own schema and rights on the rows of its tables, and nothing on any other schema. The
//!   migrations, run by the administrator's role, own every table; a worker cannot change
//!   its tables' shape or anyone's rights.
//!
//! What stays open, said in docs/operations.md: a worker may read every event on the
//! exchange (bind a queue of its own to it) and publish any type (RabbitMQ's topic
//! permissions could narrow that per routing key; the contracts do not yet say which worker
//! produces which type).

use crate::broker::Names;

/// A broker user's permissions on a virtual host: RabbitMQ's three regular expressions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerPermissions {
    /// Declare and delete.
    pub configure: String,
    /// Publish to an exchange; bind to a queue or exchange (the destination).
    pub write: String,
    /// Consume from a queue; bind from an exchange (the source).
    pub read: String,
}

/// The broker user of `worker` in `names`' namespace.
pub fn broker_user(names: &Names, worker: &str) -> String {
    format!("{}-{worker}", names.namespace())
}

/// What `worker`'s broker user may do; `operations`: also the dead letters of every worker
/// (list, replay, purge).
pub fn broker_permissions(names: &Names, worker: &str, operations: bool) -> BrokerPermissions {
    let ns = regex_escape(names.namespace());
    let own = format!("^{ns}\\.{}\\.", regex_escape(worker));
    let shared = format!("^{ns}\\.(events|dead-letter)$");
    let mut write = format!("{shared}|{own}");
    let mut read = format!("{shared}|{own}");
    if operations {
        write.push_str(&format!("|^{ns}\\.[^.]+\\.partitions$"));
        read.push_str(&format!("|^{ns}\\.[^.]+\\.dlq$"));
    }
    BrokerPermissions {
        configure: own,
        write,
        read,
    }
}

/// The broker users and permissions of `workers` (name, and whether it is the operations
/// worker) on `vhost`, as the `users` and `permissions` of a RabbitMQ definitions document.
/// The users have no password (an empty hash: they cannot log in until one is set with
/// `rabbitmqctl change_password`), so a definitions file in a repository holds no secret.
pub fn broker_definitions(
    names: &Names,
    workers: &[(&str, bool)],
    vhost: &str,
) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    use serde_json::json;
    let mut users = Vec::new();
    let mut permissions = Vec::new();
    for (worker, operations) in workers {
        let user = broker_user(names, worker);
        users.push(json!({"name": user, "password_hash": "", "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []}));
        let p = broker_permissions(names, worker, *operations);
        permissions.push(json!({"user": user, "vhost": vhost, "configure": p.configure, "write": p.write, "read": p.read}));
    }
    (users, permissions)
}

/// The group role every worker's role belongs to (`pg_hba.conf` can require TLS and a
/// password of its members in one line: `hostssl all +orderly_workers …`).
pub const WORKERS_ROLE: &str = "orderly_workers";

/// The database role of `worker`.
pub fn postgres_role(worker: &str) -> String {
    format!("orderly_{worker}")
}

/// SQL that creates `worker`'s role if missing (able to log in, no password: set one, or
/// use certificates) and gives it its own schema and nothing else. Idempotent: run it after
/// every migration (`orderly roles --apply` does), so tables a migration added are granted
/// too. Run as the role that owns the schemas (the one that runs the migrations).
pub fn postgres_grants(worker: &str) -> String {
    let role = postgres_role(worker);
    let schema = quote_ident(worker);
    format!(
        "do $$ begin
  if not exists (select from pg_roles where rolname = '{WORKERS_ROLE}') then
    create role {WORKERS_ROLE} nologin;
  end if;
  if not exists (select from pg_roles where rolname = '{role}') then
    create role {role} login in role {WORKERS_ROLE};
  end if;
end $$;
revoke all on schema public from {role};
grant usage on schema {schema} to {role};
grant select, insert, update, delete on all tables in schema {schema} to {role};
grant usage, select, update on all sequences in schema {schema} to {role};
grant execute on all functions in schema {schema} to {role};
"
    )
}

/// `name` as a quoted SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `text` with the characters a regular expression treats specially escaped.
pub(crate) fn regex_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether RabbitMQ would let `regex` through for `name` (an unanchored match; ours
    /// anchor themselves). The `regex` crate agrees with Erlang's PCRE on these shapes.
    fn matches(regex: &str, name: &str) -> bool {
        regex::Regex::new(regex).expect("valid").is_match(name)
    }

    #[test]
    fn a_worker_may_touch_its_own_names_and_the_shared_exchanges_only() {
        let names = Names::new("orderly");
        let p = broker_permissions(&names, "inventory", false);
        for own in [
            "orderly.inventory.p0",
            "orderly.inventory.partitions",
            "orderly.inventory.delays",
            "orderly.inventory.retry.3",
            "orderly.inventory.dlq",
        ] {
            assert!(matches(&p.configure, own), "configure {own}");
            assert!(matches(&p.read, own), "read {own}");
            assert!(matches(&p.write, own), "write {own}");
        }
        for shared in ["orderly.events", "orderly.dead-letter"] {
            assert!(!matches(&p.configure, shared), "configure {shared}");
            assert!(matches(&p.write, shared), "write {shared}");
        }
        for other in [
            "orderly.orders.p0",
            "orderly.orders.dlq",
            "orderly.orders.partitions",
            "orderly.inventoryx.p0",
            "orderly.out.warehouse",
            "amq.default",
            "other.inventory.p0",
        ] {
            assert!(!matches(&p.configure, other), "configure {other}");
            assert!(!matches(&p.read, other), "read {other}");
            assert!(!matches(&p.write, other), "write {other}");
        }
    }

    #[test]
    fn the_operations_worker_may_also_read_dead_letters_and_replay_them() {
        let names = Names::new("orderly");
        let p = broker_permissions(&names, "api", true);
        assert!(matches(&p.read, "orderly.orders.dlq"));
        assert!(matches(&p.write, "orderly.orders.partitions"));
        assert!(!matches(&p.read, "orderly.orders.p0"));
        assert!(!matches(&p.write, "orderly.orders.p0"));
        assert!(!matches(&p.configure, "orderly.orders.dlq"));
    }

    #[test]
    fn a_namespace_with_regex_characters_is_taken_literally() {
        let p = broker_permissions(&Names::new("a.b"), "orders", false);
        assert_eq!(p.configure, "^a\\.b\\.orders\\.");
        assert!(!matches(&p.configure, "aXb.orders.p0"));
    }

    #[test]
    fn the_grants_name_only_the_workers_own_schema() {
        let sql = postgres_grants("inventory");
        assert!(sql.contains("create role orderly_inventory login in role orderly_workers"));
        for line in sql.lines().filter(|l| l.starts_with("grant")) {
            assert!(line.contains("schema \"inventory\""), "{line}");
        }
    }
}
