//! The per-customer order placement limit (the seed's section 13 example: 5 orders an hour).
//!
//! Derived from the stored orders, not kept in a counter: the customer index
//! (`("ic", customer, created_ms, order_id)`, newest last) already holds every order a
//! customer placed with its time, so one short reverse range read of at most `max` keys
//! answers "how many in the last window, and when does the oldest of them leave it". Nothing
//! extra is written on the placement path, a restart or a takeover by a standby loses
//! nothing, and the count is exactly what was placed (queued and cancelled orders included:
//! cancelling does not give a placement back). The one gap: requests of one customer in
//! flight at the same moment are checked before either is written, so a burst of parallel
//! placements can pass together; each later one sees them all.
//!
//! [`decide`] is pure (`now` comes in); [`Orders::check_order_limit`] reads the index.

use super::place::PlaceError;
use super::{Orders, keys};
use domain::{CustomerId, OrderId, UnixMs};
use std::time::Duration;
use store::RangeRequest;

/// At most `max` orders per `window` per customer; `max == 0` turns the limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderLimit {
    pub max: u32,
    pub window: Duration,
}

impl Default for OrderLimit {
    fn default() -> Self {
        OrderLimit {
            max: 5,
            window: Duration::from_secs(3600),
        }
    }
}

/// Whether one more order is allowed now, given the creation times (ms) of the customer's
/// newest orders, newest first (at least `limit.max` of them when there are that many). On
/// refusal, how long until the oldest counted order leaves the window.
pub fn decide(limit: OrderLimit, newest_first: &[i64], now: UnixMs) -> Result<(), Duration> {
    if limit.max == 0 {
        return Ok(());
    }
    let window_ms = i64::try_from(limit.window.as_millis()).unwrap_or(i64::MAX);
    let since = now.0.saturating_sub(window_ms);
    let in_window: Vec<i64> = newest_first
        .iter()
        .copied()
        .take_while(|&at| at > since)
        .collect();
    let max = limit.max as usize;
    if in_window.len() < max {
        return Ok(());
    }
    // The max-th newest order is the first to leave the window.
    let leaves_at = in_window[max - 1].saturating_add(window_ms);
    let wait_ms = u64::try_from(leaves_at.saturating_sub(now.0)).unwrap_or(0);
    Err(Duration::from_millis(wait_ms.max(1)))
}

impl Orders {
    /// Sets the per-customer order limit (default: [`OrderLimit::default`]).
    pub fn with_order_limit(mut self, l: OrderLimit) -> Self {
        self.order_limit = l;
        self
    }

    /// Sets how long placement waits for the provider before it queues the order (default:
    /// `[payment_queue] placement_wait_ms`'s).
    pub fn with_placement_wait(mut self, wait: std::time::Duration) -> Self {
        self.placement_wait = wait;
        self
    }

    /// Refuses a placement over the customer's order limit (see the module doc).
    pub(crate) async fn check_order_limit(
        &self,
        customer: CustomerId,
        now: UnixMs,
    ) -> Result<(), PlaceError> {
        let limit = self.order_limit;
        if limit.max == 0 {
            return Ok(());
        }
        let take = limit.max as usize;
        let newest: Vec<i64> = store::read(&*self.kv, move |txn| {
            Box::pin(async move {
                let range = RangeRequest::prefix(&keys::by_customer_prefix(customer))
                    .reverse()
                    .limit(take);
                let rows = txn.get_range(range).await?;
                Ok::<_, store::TxnError<()>>(
                    rows.iter()
                        .filter_map(|kv| keys::trailing_order_id(&kv.key))
                        .map(OrderId::created_ms)
                        .collect(),
                )
            })
        })
        .await
        .map_err(|e| match e {
            store::TxnError::Store(s) => super::repo::RepoError::Store(s),
            store::TxnError::Abort(()) => super::repo::RepoError::Store(store::StoreError::Closed),
        })?;
        decide(limit, &newest, now).map_err(|retry_after| {
            metrics::counter!("cell_rate_limited_total", "scope" => "orders").increment(1);
            PlaceError::Limited { limit, retry_after }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_MS: i64 = 3_600_000;

    fn five_an_hour() -> OrderLimit {
        OrderLimit::default()
    }

    #[test]
    fn the_sixth_order_in_an_hour_waits_for_the_oldest_to_leave_the_window() {
        let now = UnixMs(10 * HOUR_MS);
        // Five orders over the last 50 minutes, newest first.
        let times: Vec<i64> = (0..5).map(|i| now.0 - i * 600_000 - 60_000).collect();
        assert_eq!(times.len(), 5);
        assert_eq!(decide(five_an_hour(), &times[..4], now), Ok(()), "the 5th");
        // The oldest was placed 41 minutes ago: 19 minutes to go.
        assert_eq!(
            decide(five_an_hour(), &times, now),
            Err(Duration::from_millis(19 * 60_000))
        );
        // Once it left the window, one more is allowed.
        let later = UnixMs(times[4] + HOUR_MS);
        assert_eq!(decide(five_an_hour(), &times, later), Ok(()));
    }

    #[test]
    fn orders_older_than_the_window_do_not_count_and_zero_is_off() {
        let now = UnixMs(10 * HOUR_MS);
        let old: Vec<i64> = (0..5).map(|i| now.0 - HOUR_MS - i).collect();
        assert_eq!(decide(five_an_hour(), &old, now), Ok(()));
        let off = OrderLimit {
            max: 0,
            ..five_an_hour()
        };
        let recent = vec![now.0; 50];
        assert_eq!(decide(off, &recent, now), Ok(()));
        // An order placed at this very millisecond still counts, and the wait is never 0.
        let one = OrderLimit {
            max: 1,
            window: Duration::from_millis(1),
        };
        assert_eq!(decide(one, &[now.0], now), Err(Duration::from_millis(1)));
    }
}
