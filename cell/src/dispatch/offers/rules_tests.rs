//! The rules around leases, on the real dispatch and store, virtual time: decline lockout
//! (and its exhausted-pool switch), auto-offline after three timeouts in a row (declines
//! never count, going online is immediate), and `undeliverable` accounting.

use super::lease::{LeaseState, OfflineReason};
use super::test_rig::{NOW, Rig};
use crate::dispatch::{DispatchConfig, DriverUpdate};
use domain::{DriverId, UnixMs};
use geostore::DriverState;

const HERE: (f64, f64) = (52.5, 13.4);

fn near(m: f64) -> (f64, f64) {
    (HERE.0 + m / 111_195.0, HERE.1)
}

fn cfg() -> DispatchConfig {
    let mut c = DispatchConfig::default();
    c.matching.offer_ttl_ms = 10_000;
    c.matching.offer_display_margin_ms = 2_000;
    c.matching.empty_retry_ms = 1_000;
    c.matching.retry_delayed_ms = 5_000;
    c.reconnect_grace_ms = 120_000;
    c
}

/// Ticks until `until`, `step_ms` apart; returns the offers made meanwhile.
async fn run(rig: &mut Rig, from: UnixMs, until: UnixMs, step_ms: i64) -> Vec<DriverId> {
    let mut t = from;
    let mut seen = Vec::new();
    while t <= until {
        rig.tick(t).await;
        seen.extend(rig.new_offers().into_iter().map(|(d, _)| d));
        t = UnixMs(t.0 + step_ms);
    }
    seen
}

#[tokio::test]
async fn a_driver_who_declined_or_timed_out_is_never_offered_the_order_again() {
    for reoffer in [false, true] {
        let mut c = cfg();
        c.matching.reoffer_when_exhausted = reoffer;
        let mut rig = Rig::new(c).await;
        rig.driver(1, near(200.0), NOW).await;
        rig.driver(2, near(900.0), NOW).await;
        let order = rig.order(10, HERE, NOW).await;
        rig.tick(NOW).await;
        let offers = rig.new_offers();
        assert_eq!(offers.len(), 1);
        let (first, offer) = offers[0].clone();
        let delivery = domain::DeliveryId(offer.delivery_id);
        rig.d.respond(first, delivery, false, NOW).await.unwrap();
        rig.tick(NOW).await;
        let offers = rig.new_offers();
        assert_eq!(offers.len(), 1);
        let second = offers[0].0;
        assert_ne!(first, second);
        // The second lets it lapse: both are locked out now.
        let lapse = UnixMs(NOW.0 + 10_000);
        let later = run(&mut rig, lapse, UnixMs(lapse.0 + 120_000), 2_500).await;
        let fence = super::store::fence(&*rig.kv, order.id).await.unwrap();
        assert!(fence.locked_out.contains(&first) && fence.locked_out.contains(&second));
        if reoffer {
            assert!(
                !later.is_empty() && later.iter().all(|d| [first, second].contains(d)),
                "with the switch, a locked-out driver is offered it again when nobody else is: {later:?}"
            );
        } else {
            assert_eq!(later, vec![], "locked out for good while the switch is off");
            // Somebody new is offered it at once.
            let t = UnixMs(lapse.0 + 130_000);
            rig.driver(3, near(5_000.0), t).await;
            rig.tick(t).await;
            let offers = rig.new_offers();
            assert_eq!(
                offers.iter().map(|(d, _)| *d).collect::<Vec<_>>(),
                vec![DriverId(3)]
            );
        }
    }
}

type Pending = Option<(DriverId, schemas::Offer)>;

/// The only driver answers the offers as `answers` says, one after the other (`true`:
/// decline, `false`: let it lapse). `pending`: an offer already made. Returns the time
/// after the last and an offer the last tick made.
async fn answer_each(
    rig: &mut Rig,
    mut t: UnixMs,
    mut pending: Pending,
    answers: &[bool],
) -> (UnixMs, Pending) {
    for &decline in answers {
        if pending.is_none() {
            rig.tick(t).await;
            let offers = rig.new_offers();
            assert_eq!(offers.len(), 1, "one offer at {t:?}");
            pending = offers.into_iter().next();
        }
        let (d, offer) = pending.take().unwrap();
        if decline {
            let delivery = domain::DeliveryId(offer.delivery_id);
            rig.d.respond(d, delivery, false, t).await.unwrap();
            t = UnixMs(t.0 + 1_000);
        } else {
            // The lease ends `offer_display_margin_ms` after the shown deadline.
            t = UnixMs(offer.expires_at_ms as i64 + 2_000);
            rig.tick(t).await;
            // The tick that expired it may already have offered the next order.
            let again = rig.new_offers();
            assert!(again.len() <= 1);
            pending = again.into_iter().next();
        }
    }
    (t, pending)
}

#[tokio::test]
async fn three_timeouts_in_a_row_take_a_driver_offline_declines_never_count() {
    let mut rig = Rig::new(cfg()).await;
    rig.driver(1, near(100.0), NOW).await;
    let d = DriverId(1);
    for i in 0..8 {
        rig.order(100 + i, HERE, NOW).await;
    }
    // timeout, timeout, decline (ends the streak), timeout, timeout: still online.
    let (t, pending) = answer_each(&mut rig, NOW, None, &[false, false, true, false, false]).await;
    let rec = rig.d.offer_record(d).await.unwrap();
    assert_eq!(
        (rec.timeouts, rec.declines, rec.offline_reason),
        (4, 1, None)
    );
    // Still online: already holding the next offer.
    assert_eq!(
        rig.d.geo().get(geostore::DriverId(1)).unwrap().state,
        DriverState::Offered
    );
    let (t, pending) = answer_each(&mut rig, t, pending, &[false]).await;
    assert!(pending.is_none(), "taken offline before the next offer");
    let rec = rig.d.offer_record(d).await.unwrap();
    assert_eq!(rec.offline_reason, Some(OfflineReason::MissedOffers));
    assert_eq!(
        rig.d.geo().get(geostore::DriverId(1)).unwrap().state,
        DriverState::Offline
    );
    assert_eq!(
        run(&mut rig, t, UnixMs(t.0 + 30_000), 5_000).await,
        vec![],
        "offline: no offers"
    );
    // Back online at once (no penalty wait), and offered an order at its next round (the
    // waiting orders were flagged delayed meanwhile: `retry_delayed_ms`).
    let t = UnixMs(t.0 + 30_001);
    rig.d.update(d, DriverUpdate::Online, t).await.unwrap();
    assert_eq!(rig.d.offer_record(d).await.unwrap().offline_reason, None);
    assert_eq!(
        rig.d.geo().get(geostore::DriverId(1)).unwrap().state,
        DriverState::Available
    );
    rig.tick(UnixMs(t.0 + 5_000)).await;
    assert_eq!(rig.new_offers().len(), 1);
}

#[tokio::test]
async fn offers_a_driver_could_not_receive_count_neither_as_timeouts_nor_in_the_rate() {
    let mut rig = Rig::new(cfg()).await;
    let d = DriverId(1);
    rig.driver(1, near(100.0), NOW).await;
    let order = rig.order(10, HERE, NOW).await;
    let mut t = NOW;
    for round in 0..4 {
        rig.tick(t).await;
        let offers = rig.new_offers();
        assert_eq!(
            offers.len(),
            1,
            "round {round}: offered again (not locked out)"
        );
        let offer_id = super::OfferId(offers[0].1.offer_id);
        // The connection drops (the grace period is 2 minutes) and the offer lapses.
        let session = {
            let st = rig.d.state.lock();
            st.sessions.get(&d).map(|s| s.id)
        };
        rig.d.disconnect(d, session.unwrap(), t);
        t = UnixMs(t.0 + 10_000);
        rig.tick(t).await;
        let l = super::store::get_lease(&*rig.kv, offer_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((l.state, l.undeliverable), (LeaseState::Expired, true));
        rig.outboxes.clear();
        t = UnixMs(t.0 + 1);
        rig.driver(1, near(100.0), t).await;
        // The order's next round: after the empty search of the expiring tick
        // (`empty_retry_ms`, or `retry_delayed_ms` once it is flagged delayed).
        t = UnixMs(t.0 + 5_001);
    }
    let rec = rig.d.offer_record(d).await.unwrap();
    assert_eq!((rec.undeliverable, rec.timeouts, rec.received()), (4, 0, 0));
    assert_eq!(
        rec.offline_reason, None,
        "undeliverable offers never take a driver offline"
    );
    let stats = rig.d.state.lock().stats.get(&d).map_or(0, |s| s.offers);
    assert_eq!(
        stats, 0,
        "nor do they enter the acceptance rate used in scoring"
    );
    let fence = super::store::fence(&*rig.kv, order.id).await.unwrap();
    assert!(fence.locked_out.is_empty());
}
