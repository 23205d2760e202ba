//! The repository on the real embedded store and on the FoundationDB-semantics model with
//! conflicts and unknown commit results injected (`test_stores::both`): idempotent creation,
//! and random command sequences checked against the invariants (the history is a valid path
//! through the transition table, one event per transition, indexes agree with the records).

use super::test_stores::{self, TestStore};
use super::{WriteOp, keys, repo};
use domain::machine::decide;
use domain::order::OrderEvent;
use domain::{
    Actor, Command, CustomerId, DeliveryId, DriverId, Order, OrderId, OrderStatus, RestaurantId,
    UnixMs,
};
use proptest::prelude::*;
use std::sync::Arc;
use store::{Kv, LogId, LogPos, RangeRequest};

const LOG: LogId = LogId(1);

fn op() -> WriteOp {
    WriteOp::new(UnixMs(1_000))
}

async fn event_count(kv: &dyn Kv) -> usize {
    kv.read_events(LOG, LogPos(1), 0).await.unwrap().len()
}

fn order(id: u64, customer: u64, restaurant: u64, at: i64) -> Order {
    domain::testing::order(
        OrderId(id),
        CustomerId(customer),
        RestaurantId(restaurant),
        UnixMs(at),
    )
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn idempotent_placement_reuses_the_reserved_order_id_and_writes_nothing_twice() {
    rt().block_on(async {
        for TestStore { kv, .. } in test_stores::both() {
            let c = CustomerId(1);
            let r1 = repo::reserve(&*kv, c, "k1".into(), OrderId(10), 77)
                .await
                .unwrap();
            assert_eq!((r1.order_id, r1.existing.is_none()), (OrderId(10), true));
            // A retry before the order was written (e.g. the payment call timed out) gets the
            // same id back, not its own fresh one.
            let r2 = repo::reserve(&*kv, c, "k1".into(), OrderId(11), 77)
                .await
                .unwrap();
            assert_eq!((r2.order_id, r2.existing.is_none()), (OrderId(10), true));
            let first = repo::create(&*kv, LOG, order(10, 1, 5, 1_000), &op())
                .await
                .unwrap();
            assert!(matches!(first, repo::Created::New(_)));
            let r3 = repo::reserve(&*kv, c, "k1".into(), OrderId(12), 77)
                .await
                .unwrap();
            assert_eq!(r3.existing.map(|o| o.id), Some(OrderId(10)));
            let again = repo::create(&*kv, LOG, order(10, 1, 5, 1_000), &op())
                .await
                .unwrap();
            assert!(matches!(again, repo::Created::Existing(_)));
            assert_eq!(event_count(&*kv).await, 1, "the retry appended no event");
            // The same key with a different request is refused.
            let mismatch = repo::reserve(&*kv, c, "k1".into(), OrderId(13), 78).await;
            assert!(matches!(
                mismatch,
                Err(repo::RepoError::IdempotencyMismatch)
            ));
            // Keys are per customer: another customer's "k1" is a different order.
            let other = repo::reserve(&*kv, CustomerId(2), "k1".into(), OrderId(14), 77)
                .await
                .unwrap();
            assert_eq!(other.order_id, OrderId(14));
        }
    });
}

#[test]
fn an_order_id_taken_by_another_customer_is_refused_not_replayed() {
    rt().block_on(async {
        for TestStore { kv, .. } in test_stores::both() {
            let created = repo::create(&*kv, LOG, order(20, 1, 5, 1_000), &op())
                .await
                .unwrap();
            assert!(matches!(created, repo::Created::New(_)));
            // The same id issued again (say, a clock that moved back) for another customer.
            let again = repo::create(&*kv, LOG, order(20, 2, 5, 2_000), &op()).await;
            assert!(
                matches!(again, Err(repo::RepoError::IdTaken(OrderId(20)))),
                "{again:?}"
            );
            let reserved = repo::reserve(&*kv, CustomerId(2), "k".into(), OrderId(20), 1).await;
            assert!(
                matches!(reserved, Err(repo::RepoError::IdTaken(OrderId(20)))),
                "{reserved:?}"
            );
            // Nothing was bound to the refused key, and the order is still the first customer's.
            let retry = repo::reserve(&*kv, CustomerId(2), "k".into(), OrderId(21), 1)
                .await
                .unwrap();
            assert_eq!(
                (retry.order_id, retry.existing.is_none()),
                (OrderId(21), true)
            );
            let stored = repo::get(&*kv, OrderId(20))
                .await
                .unwrap()
                .expect("order 20");
            assert_eq!(stored.customer_id, CustomerId(1));
            // The same customer's retry of its own creation is still a replay.
            let replay = repo::create(&*kv, LOG, order(20, 1, 5, 1_000), &op())
                .await
                .unwrap();
            assert!(matches!(replay, repo::Created::Existing(_)));
        }
    });
}

#[test]
fn order_ids_resume_above_the_persisted_mark_after_a_restart() {
    use crate::orders::ids::LEASE;
    rt().block_on(async {
        for TestStore { kv, .. } in test_stores::both() {
            let now = UnixMs(1_760_000_000_000);
            let cell = domain::CellId::new(4).unwrap();
            let first = ids_only_orders(kv.clone(), cell).await;
            first.resume_ids(now).await.unwrap();
            let a = first.next_order_id(now).await.unwrap();
            let b = first.next_order_id(UnixMs(now.0 + 5_000)).await.unwrap();
            assert!(b > a);
            drop(first);
            // Restart with the clock 10 s back: ids continue above the first run's lease.
            let second = ids_only_orders(kv.clone(), cell).await;
            second.resume_ids(UnixMs(now.0 - 10_000)).await.unwrap();
            let c = second.next_order_id(UnixMs(now.0 - 10_000)).await.unwrap();
            assert!(c > b, "{c} after {b}");
            assert!(c.created_ms() > now.0 + LEASE.as_millis() as i64 - 1);
            assert_eq!(c.cell(), cell);
        }
    });
}

/// Order flows over `kv` with an empty catalog: enough to issue ids.
async fn ids_only_orders(kv: Arc<dyn Kv>, cell: domain::CellId) -> super::Orders {
    let catalog = Arc::new(catalog::Catalog::load(kv.clone()).await.unwrap());
    super::Orders::new(
        kv,
        LOG,
        domain::SnowflakeGen::new(cell),
        Arc::new(payments::SandboxGateway::new(
            &payments::SandboxConfig::default(),
        )),
        "eur".into(),
        super::Pricing {
            catalog,
            config: Default::default(),
        },
        Arc::new(crate::ownership::Ownership::new(1)),
        crate::personal::test_vault(),
    )
}

#[test]
fn customer_history_is_newest_first_and_pages() {
    rt().block_on(async {
        for TestStore { kv, .. } in test_stores::both() {
            for i in 0..5u64 {
                repo::create(&*kv, LOG, order(100 + i, 1, 5, 1_000 + i as i64), &op())
                    .await
                    .unwrap();
            }
            let page1 = repo::list_for_customer(&*kv, CustomerId(1), None, 2)
                .await
                .unwrap();
            let ids: Vec<_> = page1.iter().map(|o| o.id.0).collect();
            assert_eq!(ids, vec![104, 103]);
            let last = page1.last().unwrap();
            let page2 =
                repo::list_for_customer(&*kv, CustomerId(1), Some((last.created_at, last.id)), 10)
                    .await
                    .unwrap();
            let ids: Vec<_> = page2.iter().map(|o| o.id.0).collect();
            assert_eq!(ids, vec![102, 101, 100]);
        }
    });
}

fn commands() -> Vec<(Command, Actor)> {
    let r = Actor::Restaurant(RestaurantId(5));
    let d1 = Actor::Driver(DriverId(1));
    let d2 = Actor::Driver(DriverId(2));
    vec![
        (Command::Accept, r),
        (
            Command::Reject {
                reason: "busy".into(),
            },
            r,
        ),
        (Command::StartPreparing, r),
        (Command::MarkReady, r),
        (
            Command::AssignDriver {
                driver: DriverId(1),
                delivery: DeliveryId(9),
            },
            Actor::System,
        ),
        (
            Command::AssignDriver {
                driver: DriverId(2),
                delivery: DeliveryId(8),
            },
            Actor::System,
        ),
        (Command::UnassignDriver, Actor::System),
        (Command::ArriveAtRestaurant, d1),
        (Command::PickUp, d2),
        (Command::PickUp, d1),
        (Command::StartDelivering, d1),
        (Command::Deliver, d1),
        (
            Command::Cancel { reason: "x".into() },
            Actor::Customer(CustomerId(1)),
        ),
        (Command::FlagDelayed, Actor::System),
    ]
}

async fn check_invariants(s: &TestStore, ids: &[OrderId], accepted_steps: usize) {
    let kv = &*s.kv;
    // One event per write (creates + accepted transitions), in increasing positions,
    // consecutive on redb.
    let events = kv.read_events(LOG, LogPos(1), 0).await.unwrap();
    assert_eq!(events.len(), ids.len() + accepted_steps, "{}", s.name);
    for (i, e) in events.iter().enumerate() {
        if s.gap_free_log() {
            assert_eq!(e.pos, LogPos(i as u128 + 1));
        } else if i > 0 {
            assert!(e.pos > events[i - 1].pos);
        }
        let _: OrderEvent = serde_json::from_slice(&e.payload).unwrap();
    }
    for id in ids {
        let (o, history) = repo::get_with_history(kv, *id).await.unwrap().unwrap();
        // The history replays through the transition table to the stored status.
        assert_eq!(history[0].status, OrderStatus::Pending);
        assert_eq!(history.last().unwrap().status, o.status);
        let mut replay = order(id.0, 1, 5, 0);
        for h in &history[1..] {
            // Find a command that yields this step from the replayed state.
            let found = commands().into_iter().find_map(|(c, a)| {
                let t = decide(&replay, &c, &a).ok()?;
                let mut next = replay.clone();
                t.apply(&mut next, h.at);
                (t.to == h.status
                    && t.event == h.event
                    && a == h.by
                    && next.driver_id == h.driver_id)
                    .then_some(t)
            });
            let t = found.unwrap_or_else(|| panic!("history step {h:?} is not in the table"));
            t.apply(&mut replay, h.at);
        }
        assert_eq!(replay.status, o.status);
        // Indexes agree with the record: exactly one restaurant entry, at the current status.
        let all = kv.read_events(LOG, LogPos(1), 0).await.unwrap().len();
        assert!(all > 0);
        for s in OrderStatus::ALL {
            let rows = store::read(kv, {
                let key = keys::by_restaurant(o.restaurant_id, s, o.id);
                move |txn| {
                    let key = key.clone();
                    Box::pin(
                        async move { Ok::<_, store::TxnError<()>>(txn.get(&key).await?.is_some()) },
                    )
                }
            })
            .await
            .unwrap();
            assert_eq!(rows, s == o.status, "restaurant index for {s}");
        }
        let active = match o.driver_id {
            Some(d) => repo::active_for_driver(kv, d).await.unwrap(),
            None => vec![],
        };
        if let Some(d) = o.driver_id {
            let mine: Vec<_> = active.iter().filter(|a| a.id == o.id).collect();
            assert_eq!(
                mine.len(),
                usize::from(o.status.is_active()),
                "driver {d} index"
            );
        }
    }
    let by_customer = store::read(kv, |txn| {
        Box::pin(async move {
            Ok::<_, store::TxnError<()>>(
                txn.get_range(RangeRequest::prefix(&keys::by_customer_prefix(CustomerId(
                    1,
                ))))
                .await?
                .len(),
            )
        })
    })
    .await
    .unwrap();
    assert_eq!(by_customer, ids.len());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn random_transitions_keep_store_invariants(steps in prop::collection::vec((0usize..3, 0usize..14), 1..40)) {
        rt().block_on(async {
          for s in test_stores::both() {
            let kv = s.kv.clone();
            let ids: Vec<_> = (0..3).map(|i| OrderId(1000 + i)).collect();
            for id in &ids {
                repo::create(&*kv, LOG, order(id.0, 1, 5, id.0 as i64), &op()).await.unwrap();
            }
            let cmds = commands();
            let mut accepted = 0;
            for (n, &(o, c)) in steps.iter().enumerate() {
                let (cmd, actor) = cmds[c].clone();
                let op = WriteOp::new(UnixMs(10_000 + n as i64));
                match repo::transition(&*kv, LOG, ids[o], cmd, actor, None, &op).await {
                    Ok(_) => accepted += 1,
                    Err(repo::RepoError::Transition(_)) => {}
                    Err(e) => panic!("unexpected {e}"),
                }
            }
            check_invariants(&s, &ids, accepted).await;
          }
        });
    }
}
