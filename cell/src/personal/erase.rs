//! Erasing a customer (GDPR Art. 17): their data key is destroyed first (every sealed
//! address, phone and note of theirs, in every copy of the store, stays shut from then on),
//! then their profile is deleted, their deliveries' paths deleted unless a dispute holds them,
//! and their orders, kept for accounting, are scrubbed: legacy
//! plaintext addresses blanked, the dead ciphertext dropped, the coordinates coarsened to the
//! approximate area a driver sees before pickup.

use super::{PersonalError, Vault, window};
use crate::orders::{keys, repo};
use domain::{CustomerId, OrderId};
use store::{Kv, TxnError};

/// Orders scrubbed per store transaction.
const BATCH: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    #[error(transparent)]
    Personal(#[from] PersonalError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Repo(#[from] repo::RepoError),
    #[error(transparent)]
    History(#[from] crate::history::HistoryError),
}

/// What an erase did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Erased {
    pub orders_scrubbed: usize,
    pub profile_deleted: bool,
    /// Paths of the customer's deliveries deleted, and those kept by a dispute hold.
    pub paths_deleted: usize,
    pub paths_held: usize,
}

/// Erases `customer` (and, with `history`, the paths of their deliveries unless held).
/// Idempotent: a second erase finds the key gone and nothing to scrub.
pub async fn erase(
    kv: &dyn Kv,
    vault: &Vault,
    history: Option<&crate::history::History>,
    customer: CustomerId,
) -> Result<Erased, EraseError> {
    // The key first: once it is gone the data is unreadable whatever happens next.
    vault.destroy_key(customer)?;
    let profile_key = crate::people::key(crate::people::Kind::Customer, customer.0);
    let profile_deleted = store::transact(kv, move |txn| {
        let k = profile_key.clone();
        Box::pin(async move {
            let had = txn.get(&k).await?.is_some();
            txn.clear(&k);
            Ok::<_, TxnError<()>>(had)
        })
    })
    .await
    .map_err(crate::people::flatten)?;
    let orders = super::export::all_orders(kv, customer).await?;
    let ids: Vec<OrderId> = orders.iter().map(|o| o.id).collect();
    let (mut paths_deleted, mut paths_held) = (0, 0);
    if let Some(h) = history {
        for d in orders.iter().filter_map(|o| o.delivery_id) {
            if h.forget(d).await? {
                paths_held += 1;
            } else {
                paths_deleted += 1;
            }
        }
    }
    let mut scrubbed = 0;
    for chunk in ids.chunks(BATCH) {
        let chunk = chunk.to_vec();
        scrubbed += store::transact(kv, move |txn| {
            let chunk = chunk.clone();
            Box::pin(async move {
                let mut n = 0;
                for id in chunk {
                    let Some(mut o) = repo::load(txn, id).await? else {
                        continue;
                    };
                    let a = &mut o.delivery_address;
                    let (lat, lng) = window::approximate(a.lat, a.lng);
                    if a.formatted.is_empty() && a.sealed.is_none() && (a.lat, a.lng) == (lat, lng)
                    {
                        continue;
                    }
                    a.formatted.clear();
                    a.sealed = None;
                    (a.lat, a.lng) = (lat, lng);
                    txn.set(&keys::order(id), &repo::to_json(&o));
                    n += 1;
                }
                Ok::<_, TxnError<repo::RepoError>>(n)
            })
        })
        .await
        .map_err(repo::RepoError::from)?;
    }
    tracing::info!(customer_id = %customer, orders = scrubbed, "customer erased");
    Ok(Erased {
        orders_scrubbed: scrubbed,
        profile_deleted,
        paths_deleted,
        paths_held,
    })
}
