//! A seeded run of 1,000 interleavings of answers to leased offers on the real dispatch and
//! store: accepts racing (the holder several times, with and without the fencing number,
//! another driver at once), accepts 1 ms before, at and 1 ms after the lease's end (with
//! and without a tick that re-offered the order in between), and `kill -9` between the
//! accept's commit and its reply, or while the offer is open ([`Rig::crash`]). After every
//! interleaving and at the end:
//!
//! - one assignment per order (one `driver_assigned` event, only for an order some accept
//!   won), to the driver whose accept won;
//! - every accept that won or repeated got the identical reply (the lease's stored
//!   `AcceptReply`, and the first transport body kept);
//! - no driver holds two orders.

use super::lease::{AcceptReply, OfferId, Refusal};
use super::test_rig::{NOW, Rig};
use crate::dispatch::{DispatchConfig, DispatchError};
use domain::{DeliveryId, DriverId, OrderId, UnixMs};
use std::collections::HashMap;

/// splitmix64: a seeded sequence, so a failure names the seed and the interleaving.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const SEED: u64 = 0x0019_0001;
const INTERLEAVINGS: u64 = 1_000;
/// Interleavings per store: a restart re-reads every order, so stores stay small.
const PER_RIG: u64 = 50;

fn cfg() -> DispatchConfig {
    let mut c = DispatchConfig::default();
    c.matching.offer_ttl_ms = 30_000;
    c.matching.offer_display_margin_ms = 2_000;
    c
}

/// What the replies to one order's accepts were.
#[derive(Default)]
struct Seen {
    winner: Option<DriverId>,
    replies: Vec<AcceptReply>,
    bodies: Vec<String>,
}

/// One accept as a transport makes it: the lease's answer, and the reply body, kept by the
/// first request that made one (what the REST handler does).
async fn accept(
    rig: &Rig,
    driver: DriverId,
    delivery: DeliveryId,
    offer: Option<(OfferId, Option<u64>)>,
    now: UnixMs,
    nonce: u64,
) -> Result<(AcceptReply, String, bool), DispatchError> {
    let (id, fence) = offer.map_or((None, None), |(o, f)| (Some(o), f));
    let a = rig
        .d
        .answer(driver, delivery, id, fence, true, now)
        .await?
        .expect("an accept returns what it did");
    let body = match a.body {
        Some(b) => b,
        None => {
            let made = format!("{{\"reply\":{nonce}}}");
            rig.d.keep_reply(a.reply.offer, made).await?
        }
    };
    Ok((a.reply, body, a.replay))
}

fn record(seen: &mut Seen, r: &Result<(AcceptReply, String, bool), DispatchError>) {
    if let Ok((reply, body, _)) = r {
        seen.winner.get_or_insert(reply.driver);
        seen.replies.push(reply.clone());
        seen.bodies.push(body.clone());
    }
}

fn refused(r: &Result<(AcceptReply, String, bool), DispatchError>) -> Option<Refusal> {
    match r {
        Err(DispatchError::Refused(x)) => Some(*x),
        _ => None,
    }
}

#[tokio::test]
async fn a_thousand_seeded_interleavings_give_one_assignment_per_order_and_identical_replays() {
    let mut rng = Rng(SEED);
    let mut nonce = 0u64;
    let mut kinds = [0u32; 5];
    for rig_no in 0..INTERLEAVINGS / PER_RIG {
        let mut rig = Rig::new(cfg()).await;
        let mut t = NOW;
        let mut seen: HashMap<OrderId, Seen> = HashMap::new();
        let mut drivers = Vec::new();
        for i in 0..PER_RIG {
            let case = rig_no * PER_RIG + i;
            // Each interleaving far from the others (> 10 km): its own drivers only.
            let here = (40.0 + i as f64 * 0.2, 10.0 + (rig_no % 10) as f64 * 0.3);
            let (a_id, b_id) = (DriverId(case * 2 + 1), DriverId(case * 2 + 2));
            rig.driver(a_id.0, (here.0 + 0.001, here.1), t).await;
            rig.driver(b_id.0, (here.0 + 0.005, here.1), t).await;
            drivers.extend([a_id, b_id]);
            let order = rig.order(1_000 + case, here, t).await.id;
            rig.tick(t).await;
            let offers = rig.new_offers();
            assert_eq!(offers.len(), 1, "case {case}: one offer");
            let (holder, offer) = offers[0].clone();
            let other = if holder == a_id { b_id } else { a_id };
            let delivery = DeliveryId(offer.delivery_id);
            let id = OfferId(offer.offer_id);
            let lease = super::store::get_lease(&*rig.kv, id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(lease.fence, 1);
            assert_eq!(
                lease.display_deadline.0, offer.expires_at_ms as i64,
                "the offer shows the display deadline"
            );
            let end = lease.expires_at;
            let s = seen.entry(order).or_default();
            let kind = rng.below(5) as usize;
            kinds[kind] += 1;
            match kind {
                // Accepts racing: the holder 2-4 times (with and without the fence), the
                // other driver once.
                0 => {
                    let at = UnixMs(t.0 + rng.below(28_000) as i64);
                    let n = 2 + rng.below(3);
                    let mut futs = Vec::new();
                    for k in 0..n {
                        nonce += 1;
                        let with = match k % 3 {
                            0 => Some((id, Some(1))),
                            1 => Some((id, None)),
                            _ => None,
                        };
                        futs.push(accept(&rig, holder, delivery, with, at, nonce));
                    }
                    nonce += 1;
                    let (mine, theirs) = tokio::join!(
                        futures::future::join_all(futs),
                        accept(&rig, other, delivery, Some((id, Some(1))), at, nonce)
                    );
                    assert!(
                        matches!(theirs, Err(DispatchError::UnknownDelivery(_))),
                        "case {case}: {theirs:?}"
                    );
                    let fresh = mine
                        .iter()
                        .filter(|r| matches!(r, Ok((_, _, false))))
                        .count();
                    assert_eq!(fresh, 1, "case {case}: one accept assigns, the rest repeat");
                    mine.iter().for_each(|r| record(s, r));
                }
                // At the lease's end ± 1 ms, with or without a tick (that expires the lease
                // and offers the order to the other driver) in between.
                1 | 2 => {
                    let delta = rng.below(3) as i64 - 1;
                    let at = UnixMs(end.0 + delta);
                    let ticked = kind == 2 && delta >= 0;
                    if ticked {
                        rig.tick(at).await;
                        let re = rig.new_offers();
                        assert_eq!(re.len(), 1, "case {case}: re-offered");
                        assert_eq!(re[0].0, other);
                    }
                    nonce += 1;
                    let r = accept(&rig, holder, delivery, Some((id, Some(1))), at, nonce).await;
                    match (delta, ticked) {
                        (-1, _) => assert!(r.is_ok(), "case {case}: 1 ms early wins: {r:?}"),
                        (_, false) => {
                            assert_eq!(refused(&r), Some(Refusal::OfferExpired), "case {case}")
                        }
                        (_, true) => {
                            assert_eq!(refused(&r), Some(Refusal::OfferSuperseded), "case {case}");
                            let second = super::store::get_lease(
                                &*rig.kv,
                                OfferId(rig_latest(&rig, order).await),
                            )
                            .await
                            .unwrap()
                            .unwrap();
                            assert_eq!(second.fence, 2, "the fencing number grew");
                            nonce += 1;
                            let b = accept(
                                &rig,
                                other,
                                delivery,
                                Some((second.offer, Some(2))),
                                at,
                                nonce,
                            )
                            .await;
                            assert!(b.is_ok(), "case {case}: {b:?}");
                            record(s, &b);
                            nonce += 1;
                            let late =
                                accept(&rig, holder, delivery, Some((id, Some(1))), at, nonce)
                                    .await;
                            assert_eq!(refused(&late), Some(Refusal::OrderTaken), "case {case}");
                        }
                    }
                    record(s, &r);
                }
                // kill -9 between the accept's commit and its reply: the reply was never
                // made; repeats after the restart answer with the committed acceptance.
                3 => {
                    let at = UnixMs(t.0 + rng.below(29_000) as i64);
                    let a = rig
                        .d
                        .answer(holder, delivery, Some(id), Some(1), true, at)
                        .await
                        .unwrap()
                        .unwrap();
                    assert!(!a.replay);
                    rig.crash(at).await;
                    for _ in 0..2 {
                        nonce += 1;
                        let r =
                            accept(&rig, holder, delivery, Some((id, Some(1))), at, nonce).await;
                        assert!(matches!(r, Ok((_, _, true))), "case {case}: {r:?}");
                        assert_eq!(r.as_ref().unwrap().0, a.reply, "case {case}");
                        record(s, &r);
                    }
                }
                // kill -9 while the offer is open: before its end the restored lease takes
                // the accept; at or after it, recovery expired it.
                _ => {
                    let crash_at = UnixMs(end.0 - 1_000 + rng.below(2_000) as i64);
                    rig.crash(crash_at).await;
                    nonce += 1;
                    let r =
                        accept(&rig, holder, delivery, Some((id, Some(1))), crash_at, nonce).await;
                    if crash_at < end {
                        assert!(r.is_ok(), "case {case}: restored offer: {r:?}");
                    } else {
                        assert_eq!(refused(&r), Some(Refusal::OfferExpired), "case {case}");
                    }
                    record(s, &r);
                }
            }
            // This interleaving's drivers leave: an order left waiting is not offered to
            // them in the next one.
            t = UnixMs(end.0 + 10);
            for d in [a_id, b_id] {
                rig.leave(d, t).await;
            }
            let s = &seen[&order];
            assert!(s.replies.windows(2).all(|w| w[0] == w[1]), "case {case}");
            assert!(s.bodies.windows(2).all(|w| w[0] == w[1]), "case {case}");
            let assigned = rig.assignments(order).await;
            assert_eq!(assigned, usize::from(s.winner.is_some()), "case {case}");
            let stored = crate::orders::repo::get(&*rig.kv, order)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(stored.driver_id, s.winner, "case {case}");
        }
        for d in drivers {
            assert!(rig.active_orders(d).await <= 1, "{d} holds two orders");
        }
    }
    assert!(kinds.iter().all(|k| *k > 100), "every kind ran: {kinds:?}");
}

/// The order's latest offer id.
async fn rig_latest(rig: &Rig, order: OrderId) -> u64 {
    let fence = super::store::fence(&*rig.kv, order).await.unwrap();
    fence.latest_offer.expect("offered").0
}
