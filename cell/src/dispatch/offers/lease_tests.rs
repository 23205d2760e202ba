//! The lease machine alone: fencing, expiry to the millisecond, replays, lockout and the
//! driver record's streak.

use super::*;

const T0: UnixMs = UnixMs(1_000_000);

fn cfg() -> LeaseConfig {
    LeaseConfig {
        ttl: Duration::from_millis(30_000),
        display_margin: Duration::from_millis(2_000),
        offline_after_timeouts: 3,
    }
}

fn new_lease(f: &mut OrderFence, offer: u64, driver: u64, now: UnixMs) -> Result<Lease, Refusal> {
    create(
        f,
        OfferId(offer),
        vec![OrderId(1)],
        DeliveryId(9),
        DriverId(driver),
        now,
        &cfg(),
        false,
    )
}

#[test]
fn a_lease_shows_its_deadline_two_seconds_early_and_expires_to_the_millisecond() {
    let mut f = OrderFence::default();
    let l = new_lease(&mut f, 1, 7, T0).unwrap();
    assert_eq!(l.fence, 1);
    assert_eq!(l.expires_at, UnixMs(T0.0 + 30_000));
    assert_eq!(l.display_deadline, UnixMs(T0.0 + 28_000));
    let just_before = UnixMs(l.expires_at.0 - 1);
    assert_eq!(
        accept(&l, &f, DriverId(7), Some(1), just_before),
        Ok(Accept::Assign)
    );
    assert_eq!(
        accept(&l, &f, DriverId(7), Some(1), l.expires_at),
        Err(Refusal::OfferExpired)
    );
    assert_eq!(
        accept(&l, &f, DriverId(8), None, T0),
        Err(Refusal::NotYours)
    );
    assert_eq!(
        accept(&l, &f, DriverId(7), Some(2), T0),
        Err(Refusal::OfferSuperseded),
        "a fencing number the offer did not carry"
    );
}

#[test]
fn fencing_numbers_only_grow_and_an_older_offer_is_superseded() {
    let mut f = OrderFence::default();
    let mut first = new_lease(&mut f, 1, 7, T0).unwrap();
    assert_eq!(new_lease(&mut f, 2, 8, T0), Err(Refusal::StillOpen));
    let at = UnixMs(first.expires_at.0 + 1);
    assert_eq!(
        close(
            &mut first,
            &mut f,
            Close::Expired {
                undeliverable: false
            },
            at
        ),
        Ok(true)
    );
    assert!(f.locked_out.contains(&DriverId(7)));
    let second = new_lease(&mut f, 2, 8, at).unwrap();
    assert_eq!(second.fence, 2);
    assert_eq!(
        accept(&first, &f, DriverId(7), Some(1), at),
        Err(Refusal::OfferSuperseded)
    );
    let mut second = second;
    let reply = accepted(&mut second, &mut f, at);
    assert_eq!(
        accept(&second, &f, DriverId(8), Some(2), at),
        Ok(Accept::Replay(reply))
    );
    assert_eq!(
        accept(&first, &f, DriverId(7), None, at),
        Err(Refusal::OrderTaken)
    );
    assert_eq!(new_lease(&mut f, 3, 9, at), Err(Refusal::OrderTaken));
}

#[test]
fn an_expiry_before_the_lease_ends_is_refused_and_a_late_decline_is_a_timeout() {
    let mut f = OrderFence::default();
    let mut l = new_lease(&mut f, 1, 7, T0).unwrap();
    let early = UnixMs(l.expires_at.0 - 1);
    assert_eq!(
        close(
            &mut l,
            &mut f,
            Close::Expired {
                undeliverable: false
            },
            early
        ),
        Err(Refusal::StillOpen)
    );
    let end = l.expires_at;
    assert_eq!(close(&mut l, &mut f, Close::Declined, end), Ok(true));
    assert_eq!(l.state, LeaseState::Expired);
    assert_eq!(close(&mut l, &mut f, Close::Declined, end), Ok(false));
}

#[test]
fn lockout_spares_withdrawn_and_undeliverable_offers() {
    let mut f = OrderFence::default();
    let mut l = new_lease(&mut f, 1, 7, T0).unwrap();
    close(&mut l, &mut f, Close::Withdrawn, T0).unwrap();
    let mut l = new_lease(&mut f, 2, 7, T0).unwrap();
    close(
        &mut l,
        &mut f,
        Close::Expired {
            undeliverable: true,
        },
        T0,
    )
    .unwrap();
    assert!(f.locked_out.is_empty());
    let mut l = new_lease(&mut f, 3, 7, T0).unwrap();
    close(&mut l, &mut f, Close::Declined, T0).unwrap();
    assert_eq!(new_lease(&mut f, 4, 7, T0), Err(Refusal::LockedOut));
    let again = create(
        &mut f,
        OfferId(4),
        vec![OrderId(1)],
        DeliveryId(9),
        DriverId(7),
        T0,
        &cfg(),
        true,
    );
    assert!(again.is_ok(), "the exhausted-pool switch re-offers");
}

#[test]
fn three_timeouts_in_a_row_go_offline_and_answers_or_undeliverable_offers_do_not_count() {
    let mut rec = DriverRecord::default();
    let lapse = |undeliverable: bool, declined: bool| {
        let mut f = OrderFence::default();
        let mut l = new_lease(&mut f, 1, 7, T0).unwrap();
        let how = if declined {
            Close::Declined
        } else {
            Close::Expired { undeliverable }
        };
        let end = l.expires_at;
        close(&mut l, &mut f, how, end).unwrap();
        l
    };
    let decline = {
        let mut f = OrderFence::default();
        let mut l = new_lease(&mut f, 1, 7, T0).unwrap();
        close(&mut l, &mut f, Close::Declined, T0).unwrap();
        l
    };
    assert!(!record(&mut rec, &lapse(false, false), &cfg()));
    assert!(!record(&mut rec, &lapse(false, false), &cfg()));
    assert!(
        !record(&mut rec, &lapse(true, false), &cfg()),
        "undeliverable"
    );
    assert!(
        !record(&mut rec, &decline, &cfg()),
        "a decline ends the streak"
    );
    assert!(!record(&mut rec, &lapse(false, false), &cfg()));
    assert!(!record(&mut rec, &lapse(false, false), &cfg()));
    assert!(record(&mut rec, &lapse(false, false), &cfg()));
    assert_eq!(rec.offline_reason, Some(OfflineReason::MissedOffers));
    assert_eq!((rec.timeouts, rec.declines, rec.undeliverable), (5, 1, 1));
    assert_eq!(
        rec.received(),
        6,
        "the undeliverable one is not in the rate"
    );
    assert!(online(&mut rec));
    assert_eq!(rec.offline_reason, None);
}
