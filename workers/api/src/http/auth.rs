//! Authentication and permissions as extractors, so a handler's signature says who may call
//! it: [`Caller`] is a staff member with a valid token (else 401); [`Caller::require`]
//! checks a permission (else 403). The storefronts' customers have their own extractor
//! (`super::customer::Customer`), counted by the same rules through the helpers here.
//!
//! Every token that does not authenticate (unknown, expired, revoked, its holder
//! deactivated) gets the same 401: the caller learns nothing about which tokens exist. The
//! log says which it was.
//!
//! Rate limits are counted here too (`domain::rate`), because only here is it known whose
//! request it is: an authenticated request against its bearer (a staff token, a customer),
//! one that does not authenticate against its address ([`Anonymous`] for the endpoints that
//! need no token).
//! An address over its limit is refused before its token is looked up. Over a limit the
//! answer is 429 with `Retry-After`; it is logged at debug level only and not audited (a
//! flood must not become a flood of log lines or audit rows).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{StatusCode, header, request::Parts},
};
use tracing::{debug, error, info};

use super::{Api, Problem};
use crate::domain::access::{Permission, Scope};
use crate::domain::rate::Bearer;
use crate::domain::token;
use crate::store::staff::{self, Refused};

/// An authenticated staff member.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub(crate) staff::Principal);

impl Caller {
    /// The caller, if their role grants `permission`; else a 403 naming it.
    pub(crate) fn require(self, permission: Permission) -> Result<Self, Problem> {
        if self.0.role.grants(permission) {
            Ok(self)
        } else {
            info!(staff = %self.0.email, role = %self.0.role, %permission, "refused: permission");
            Err(Problem::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "Not permitted",
                format!("the role {} does not grant {permission}", self.0.role),
            ))
        }
    }

    /// The stores the caller sees.
    pub(crate) fn scope(&self) -> &Scope {
        &self.0.scope
    }

    /// Whether they see what staff member `creator` started (a bulk job, an export job):
    /// their own, or anyone's if they see every store (a job may span stores).
    pub(crate) fn sees_work_of(&self, creator: uuid::Uuid) -> bool {
        creator == self.0.staff_id || matches!(self.0.scope, Scope::All)
    }
}

/// The peer's address, when the server was started with it (always, but for tests that
/// call the router directly).
pub(crate) fn peer(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// A request that does not authenticate, counted against its address.
pub(crate) fn unauthenticated(api: &Api, peer: Option<IpAddr>) -> Result<(), Problem> {
    by_address(peer, |ip| api.throttle.unauthenticated(ip))
}

/// An address over its limit is refused before anything else is done.
pub(crate) fn not_barred(api: &Api, peer: Option<IpAddr>) -> Result<(), Problem> {
    by_address(peer, |ip| api.throttle.barred(ip))
}

/// `limit` applied to the peer's address: a 429 when it says wait.
fn by_address(
    peer: Option<IpAddr>,
    limit: impl FnOnce(IpAddr) -> Result<(), Duration>,
) -> Result<(), Problem> {
    let Some(ip) = peer else {
        return Ok(());
    };
    limit(ip).map_err(|wait| {
        debug!(%ip, ?wait, "refused: address over its rate limit");
        Problem::too_many_requests(wait)
    })
}

/// The answer to a credential that does not authenticate: `problem` (a 401), once the
/// request is counted against its address; over the address's limit, the 429 instead.
pub(crate) fn refusal(api: &Api, peer: Option<IpAddr>, problem: Problem) -> Problem {
    match unauthenticated(api, peer) {
        Ok(()) => problem,
        Err(too_many) => too_many,
    }
}

/// A request that authenticated as `bearer`, counted against its budget: a 429 over it.
pub(crate) fn counted(api: &Api, bearer: &Bearer) -> Result<(), Problem> {
    api.throttle.token(bearer).map_err(|wait| {
        debug!(?bearer, ?wait, "refused: over its rate limit");
        Problem::too_many_requests(wait)
    })
}

/// A caller of an endpoint that needs no token: counted against its address.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Anonymous;

impl FromRequestParts<Arc<Api>> for Anonymous {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<Self, Problem> {
        let peer = peer(parts);
        not_barred(api, peer)?;
        unauthenticated(api, peer)?;
        Ok(Self)
    }
}

impl FromRequestParts<Arc<Api>> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<Self, Problem> {
        let peer = peer(parts);
        not_barred(api, peer)?;
        // A refusal of the token is counted against the address first: over its limit, the
        // answer is 429, not 401.
        let refuse = |problem: Problem| refusal(api, peer, problem);
        let header = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            refuse(Problem::unauthenticated(
                "send `Authorization: Bearer <token>`",
            ))
        })?;
        let text = header
            .to_str()
            .ok()
            .and_then(token::bearer)
            .ok_or_else(|| {
                refuse(Problem::unauthenticated(
                    "the Authorization header must be `Bearer <token>`",
                ))
            })?;
        match staff::authenticate(&api.pool, text).await {
            Ok(Ok(principal)) => {
                counted(api, &Bearer::Staff(principal.token_id))?;
                tracing::Span::current().record("staff", principal.email.as_str());
                tracing::debug!(staff = %principal.email, token = %principal.token_id, staff_id = %principal.staff_id, "authenticated");
                Ok(Caller(principal))
            }
            Ok(Err(reason)) => {
                let why = match reason {
                    Refused::Unknown => "unknown",
                    Refused::Expired => "expired",
                    Refused::Revoked => "revoked",
                    Refused::Inactive => "holder inactive",
                };
                info!(reason = why, prefix = token::prefix(text), "refused: token");
                Err(refuse(Problem::unauthenticated(
                    "the token is unknown, expired or revoked",
                )))
            }
            Err(e) => {
                error!(error = %e, "authentication failed: database");
                Err(Problem::unavailable())
            }
        }
    }
}
