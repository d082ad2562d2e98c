//! Authentication and permissions as extractors, so a handler's signature says who may call
//! it: [`Caller`] is a staff member with a valid token (else 401); [`Caller::require`]
//! checks a permission (else 403).
//!
//! Every token that does not authenticate (unknown, expired, revoked, its holder
//! deactivated) gets the same 401: the caller learns nothing about which tokens exist. The
//! log says which it was.

use std::sync::Arc;

use axum::{
    extract::FromRequestParts,
    http::{StatusCode, header, request::Parts},
};
use tracing::{error, info};

use super::{Api, Problem};
use crate::domain::access::{Permission, Scope};
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
}

impl FromRequestParts<Arc<Api>> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<Self, Problem> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| Problem::unauthenticated("send `Authorization: Bearer <token>`"))?;
        let text = header
            .to_str()
            .ok()
            .and_then(token::bearer)
            .ok_or_else(|| {
                Problem::unauthenticated("the Authorization header must be `Bearer <token>`")
            })?;
        match staff::authenticate(&api.pool, text).await {
            Ok(Ok(principal)) => {
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
                Err(Problem::unauthenticated(
                    "the token is unknown, expired or revoked",
                ))
            }
            Err(e) => {
                error!(error = %e, "authentication failed: database");
                Err(Problem::unavailable())
            }
        }
    }
}
