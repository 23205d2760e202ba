//! The `token` subcommand both binaries have (dev and ops): its arguments and the minting.

use crate::{JwtKeys, Principal, Role};
use domain::{CellId, UnixMs};
use std::time::Duration;

/// Arguments of `cell token` / `router token`.
#[derive(Debug, Clone, clap::Args)]
pub struct MintArgs {
    #[arg(long, value_enum)]
    pub role: Role,
    /// The customer, driver or restaurant id.
    #[arg(long, default_value = "0")]
    pub sub: String,
    /// Home cell for requests that name no place (a customer's order list, via the router).
    #[arg(long)]
    pub home: Option<u32>,
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("--sub must be a decimal id: {0}")]
    Sub(#[from] std::num::ParseIntError),
    #[error("--home: {0}")]
    Home(#[from] domain::IdError),
}

impl MintArgs {
    /// A token for these arguments, signed with `keys`, valid for `ttl` from `now`.
    ///
    /// # Errors
    /// [`MintError`] for a `sub` that is not a number or a `home` that is not a cell id.
    pub fn mint(&self, keys: &JwtKeys, ttl: Duration, now: UnixMs) -> Result<String, MintError> {
        let who = Principal::from_role(self.role, self.sub.parse()?);
        let home = self.home.map(CellId::new).transpose()?;
        Ok(keys.issue_with_home(who, self.name.clone(), home, ttl, now))
    }
}
