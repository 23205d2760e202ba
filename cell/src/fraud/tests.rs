//! The fraud rules end to end on the real embedded store: orders are placed and moved through
//! [`Orders`] with the sandbox provider, the scorer reads the cell's log as its consumer would,
//! and each rule is shown to flag and, with an input just on the other side, not to (the
//! dispatch signals' rules are in `signals_tests.rs`). Flags survive reopening the store, and
//! a replayed event writes nothing twice.

use super::flags::{self, Filter};
use super::rules::RuleKind;
use super::signals::{self, Signal};
use super::{Flag, FraudConfig, Rule, Scorer};
use crate::orders::{Orders, PlaceOrder, Pricing, WriteOp};
use crate::ownership::Ownership;
use catalog::testing::{LAT, LNG, NOON};
use catalog::{CartLine, CartRequest, Catalog, Category, Menu, MenuItem};
use domain::{
    Actor, Address, CellId, Cents, Command, CustomerId, DeliveryId, DriverId, MenuItemId, Order,
    SnowflakeGen, UnixMs,
};
use payments::sandbox::{PM_BILLING_GB, PM_VISA};
use payments::{SandboxConfig, SandboxGateway};
use std::sync::Arc;
use store::{Kv, LogId, LogPos};

const LOG: LogId = LogId(1);
const MIN: i64 = 60_000;

fn menu(price: i64) -> Menu {
    Menu {
        categories: vec![Category {
            name: "Pizzas".into(),
            items: vec![MenuItem {
                id: MenuItemId(1),
                name: "Margherita".into(),
                description: String::new(),
                price: Cents(price),
                available: true,
                customizations: vec![],
            }],
        }],
    }
}

/// Every rule off but `only`, with `rule`'s settings.
pub(super) fn only(kind: RuleKind, rule: Rule) -> FraudConfig {
    let mut cfg = FraudConfig::default();
    for k in RuleKind::ALL {
        cfg.rules.get_mut(k).enabled = false;
    }
    *cfg.rules.get_mut(kind) = rule;
    cfg
}

pub(super) fn rule(threshold: f64, count: u32, window_ms: u64) -> Rule {
    Rule {
        enabled: true,
        threshold,
        count,
        window_ms,
    }
}

/// A cell's order flows on the real store with the sandbox (also the reconciliation tests').
pub(crate) struct Fx {
    dir: tempfile::TempDir,
    pub kv: Arc<dyn Kv>,
    pub orders: Arc<Orders>,
    pub payments: Arc<SandboxGateway>,
    scorer: Scorer,
    cursor: LogPos,
    seq: u64,
}

/// A cell over a fresh redb store: restaurant 1 sells its pizza at `price`, restaurants 2..=6
/// of the same region at 1000.
pub(crate) async fn fx(cfg: FraudConfig, price: i64) -> Fx {
    let dir = tempfile::tempdir().unwrap();
    fx_in(dir, cfg, price, true).await
}

async fn fx_in(dir: tempfile::TempDir, cfg: FraudConfig, price: i64, seed: bool) -> Fx {
    let kv: Arc<dyn Kv> =
        Arc::new(store::RedbStore::open(dir.path(), store::RedbOptions::default()).unwrap());
    let catalog = Arc::new(Catalog::load(kv.clone()).await.unwrap());
    if seed {
        catalog
            .upsert(catalog::testing::restaurant(1), menu(price))
            .await
            .unwrap();
        for r in 2..=6 {
            catalog
                .upsert(catalog::testing::restaurant(r), menu(1000))
                .await
                .unwrap();
        }
    }
    let payments = Arc::new(SandboxGateway::new(&SandboxConfig::default()));
    let orders = Arc::new(Orders::new(
        kv.clone(),
        LOG,
        SnowflakeGen::new(CellId::new(1).unwrap()),
        payments.clone(),
        "usd".into(),
        Pricing {
            catalog: catalog.clone(),
            config: Default::default(),
        },
        Arc::new(Ownership::new(1)),
        crate::personal::test_vault(),
    ));
    orders.resume_ids(NOON).await.unwrap();
    let scorer = Scorer::new(kv.clone(), payments.clone(), catalog, cfg);
    Fx {
        dir,
        kv,
        orders,
        payments,
        scorer,
        cursor: LogPos(0),
        seq: 0,
    }
}

impl Fx {
    /// Places an order of `qty` pizzas from restaurant `r` for `customer`, delivered `north`
    /// degrees of latitude from the restaurant.
    pub async fn place(&mut self, customer: u64, r: u64, qty: u32, north: f64, pm: &str) -> Order {
        self.seq += 1;
        let req = PlaceOrder {
            customer: CustomerId(customer),
            idempotency_key: format!("k{}", self.seq),
            fingerprint: self.seq,
            restaurant_id: catalog::testing::rid(r),
            cart: CartRequest {
                items: vec![CartLine {
                    item_id: MenuItemId(1),
                    quantity: qty,
                    customizations: vec![],
                }],
                address: Address {
                    lat: LAT + north,
                    lng: LNG,
                    formatted: String::new(),
                    sealed: None,
                },
            },
            payment_method_id: pm.into(),
            contact: crate::personal::Contact {
                formatted: "2 Main St".into(),
                phone: Some("+4930123456".into()),
                notes: Some("back door".into()),
            },
        };
        self.orders.place(req, NOON).await.unwrap().order
    }

    pub async fn order(&mut self, customer: u64) -> Order {
        self.place(customer, 1, 1, 0.001, PM_VISA).await
    }

    pub async fn go(&self, o: &Order, cmd: Command, by: Actor, at: i64) {
        self.orders
            .transition(o.id, cmd, by, UnixMs(NOON.0 + at))
            .await
            .unwrap();
    }

    async fn cancel(&self, o: &Order, by: Actor, at: i64) {
        let cmd = Command::Cancel {
            reason: "changed my mind".into(),
        };
        self.go(o, cmd, by, at).await;
    }

    /// Scores every event not scored yet, as the consumer would; the flags raised.
    async fn score(&mut self) -> Vec<Flag> {
        let events = self
            .kv
            .read_events(LOG, self.cursor.next(), 10_000)
            .await
            .unwrap();
        let mut raised = Vec::new();
        for e in events {
            let ev = serde_json::from_slice(&e.payload).unwrap();
            raised.extend(self.scorer.handle(e.pos, &ev).await.unwrap());
            self.cursor = e.pos;
        }
        raised
    }

    pub async fn all(&self) -> Vec<Flag> {
        flags::list(&*self.kv, Filter::default(), None, 1_000)
            .await
            .unwrap()
            .flags
    }
}

pub(super) fn rules_of(flags: &[Flag]) -> Vec<RuleKind> {
    flags.iter().map(|f| f.rule).collect()
}

#[tokio::test]
async fn high_order_value_flags_above_the_amount_only() {
    let mut fx = fx(only(RuleKind::HighOrderValue, rule(5_000.0, 0, 0)), 1000).await;
    fx.place(1, 1, 2, 0.001, PM_VISA).await;
    assert_eq!(fx.score().await, vec![], "2 pizzas are not a lot");
    let big = fx.place(1, 1, 9, 0.001, PM_VISA).await;
    let flags = fx.score().await;
    assert_eq!(rules_of(&flags), [RuleKind::HighOrderValue]);
    assert_eq!(flags[0].order_id, Some(big.id.to_string()));
    assert_eq!(flags[0].evidence["over"], "limit");
    assert_eq!(flags[0].evidence["total_cents"], big.total.0);
}

#[tokio::test]
async fn high_order_value_flags_above_the_cells_p99_once_enough_orders_were_seen() {
    let mut fx = fx(only(RuleKind::HighOrderValue, rule(1e9, 20, 0)), 1000).await;
    for c in 0..20 {
        fx.place(c, 1, 1, 0.001, PM_VISA).await;
    }
    fx.place(99, 1, 1, 0.001, PM_VISA).await;
    assert_eq!(
        fx.score().await,
        vec![],
        "a usual order is not above the p99"
    );
    fx.place(99, 1, 4, 0.001, PM_VISA).await;
    let flags = fx.score().await;
    assert_eq!(rules_of(&flags), [RuleKind::HighOrderValue]);
    assert_eq!(flags[0].evidence["over"], "p99");
}

#[tokio::test]
async fn delivery_distance_flags_a_far_drop_off_only() {
    let mut fx = fx(only(RuleKind::DeliveryDistance, rule(2.0, 0, 0)), 1000).await;
    fx.place(1, 1, 1, 0.01, PM_VISA).await; // ~1.1 km
    assert_eq!(fx.score().await, vec![]);
    fx.place(1, 1, 1, 0.03, PM_VISA).await; // ~3.3 km, inside the 5 km radius
    let flags = fx.score().await;
    assert_eq!(rules_of(&flags), [RuleKind::DeliveryDistance]);
    assert_eq!(flags[0].subject, "customer:1");
    let km = flags[0].evidence["distance_km"].as_f64().unwrap();
    assert!((3.0..3.6).contains(&km), "{km}");
}

#[tokio::test]
async fn customer_cancellations_flag_at_the_count_within_the_window_only() {
    let mut fx = fx(
        only(
            RuleKind::CustomerCancellations,
            rule(0.0, 2, 60 * MIN as u64),
        ),
        1000,
    )
    .await;
    // Customer 1: two cancellations two hours apart (never two in one hour); customer 2: two
    // within minutes.
    let a = fx.order(1).await;
    let b = fx.order(1).await;
    fx.cancel(&a, Actor::Customer(CustomerId(1)), 0).await;
    fx.cancel(&b, Actor::Customer(CustomerId(1)), 120 * MIN)
        .await;
    // Cancelled by the restaurant: not the customer's doing.
    let c = fx.order(1).await;
    fx.cancel(&c, Actor::Restaurant(catalog::testing::rid(1)), 121 * MIN)
        .await;
    assert_eq!(fx.score().await, vec![]);
    let d = fx.order(2).await;
    let e = fx.order(2).await;
    fx.cancel(&d, Actor::Customer(CustomerId(2)), 130 * MIN)
        .await;
    fx.cancel(&e, Actor::Customer(CustomerId(2)), 135 * MIN)
        .await;
    let flags = fx.score().await;
    assert_eq!(rules_of(&flags), [RuleKind::CustomerCancellations]);
    assert_eq!(flags[0].subject, "customer:2");
    assert_eq!(flags[0].evidence["count"], 2);
}

#[tokio::test]
async fn billing_country_flags_a_card_billed_abroad_only() {
    let mut fx = fx(only(RuleKind::BillingCountry, rule(0.0, 0, 0)), 1000).await;
    fx.place(1, 1, 1, 0.001, PM_VISA).await;
    assert_eq!(fx.score().await, vec![], "a US card in a US cell");
    let o = fx.place(1, 1, 1, 0.001, PM_BILLING_GB).await;
    let flags = fx.score().await;
    assert_eq!(rules_of(&flags), [RuleKind::BillingCountry]);
    assert_eq!(flags[0].order_id, Some(o.id.to_string()));
    assert_eq!(flags[0].evidence["billing_country"], "GB");
    assert_eq!(flags[0].evidence["delivery_country"], "US");
}

#[tokio::test]
async fn restaurant_rejections_flag_at_the_count_only() {
    let mut fx = fx(
        only(
            RuleKind::RestaurantRejections,
            rule(0.0, 3, 60 * MIN as u64),
        ),
        1000,
    )
    .await;
    let r2 = Actor::Restaurant(catalog::testing::rid(2));
    let r1 = Actor::Restaurant(catalog::testing::rid(1));
    let reject = || Command::Reject {
        reason: "busy".into(),
    };
    // Restaurant 2 rejects twice: under the count.
    for _ in 0..2 {
        let o = fx.place(1, 2, 1, 0.001, PM_VISA).await;
        fx.go(&o, reject(), r2, MIN).await;
    }
    assert_eq!(fx.score().await, vec![]);
    // Restaurant 1 rejects twice and cancels one it had accepted: three.
    for _ in 0..2 {
        let o = fx.order(1).await;
        fx.go(&o, reject(), r1, MIN).await;
    }
    let o = fx.order(1).await;
    fx.go(&o, Command::Accept, r1, MIN).await;
    fx.cancel(&o, r1, 2 * MIN).await;
    let flags = fx.score().await;
    assert_eq!(rules_of(&flags), [RuleKind::RestaurantRejections]);
    assert_eq!(
        flags[0].subject,
        format!("restaurant:{}", catalog::testing::rid(1))
    );
    assert_eq!(flags[0].evidence["last"], "cancelled");
}

#[tokio::test]
async fn menu_price_flags_an_item_far_above_its_categorys_median_in_the_region() {
    // Restaurant 1's pizza costs 5000, the five others' 1000.
    let mut fx = fx(
        only(RuleKind::MenuPrice, rule(3.0, 5, 60 * MIN as u64)),
        5000,
    )
    .await;
    fx.place(1, 2, 1, 0.001, PM_VISA).await;
    assert_eq!(fx.score().await, vec![], "a pizza at the median");
    fx.order(1).await;
    let flags = fx.score().await;
    assert_eq!(rules_of(&flags), [RuleKind::MenuPrice]);
    assert_eq!(flags[0].evidence["median_cents"], 1000);
    assert_eq!(flags[0].evidence["ratio"], 5.0);
    // The same item again within the window: no second flag.
    fx.order(2).await;
    assert_eq!(fx.score().await, vec![]);
}

#[tokio::test]
async fn menu_price_needs_enough_restaurants_for_a_median() {
    let mut fx = fx(
        only(RuleKind::MenuPrice, rule(3.0, 7, 60 * MIN as u64)),
        5000,
    )
    .await;
    fx.order(1).await;
    assert_eq!(fx.score().await, vec![], "6 restaurants, 7 needed");
}

/// Accepted, assigned to `driver`, who reached the restaurant; then cancelled by it.
async fn cancelled_at_pickup(fx: &mut Fx, driver: u64, at: i64) {
    let o = fx.order(1).await;
    let r = Actor::Restaurant(catalog::testing::rid(1));
    fx.go(&o, Command::Accept, r, at).await;
    let op = WriteOp::new(UnixMs(NOON.0 + at));
    let d = DriverId(driver);
    crate::orders::repo::assign_driver(&*fx.kv, LOG, o.id, d, DeliveryId(o.id.0), &op)
        .await
        .unwrap();
    fx.go(&o, Command::ArriveAtRestaurant, Actor::Driver(d), at)
        .await;
    fx.cancel(&o, r, at + 1).await;
}

#[tokio::test]
async fn pair_cancellations_flag_the_same_driver_and_restaurant_only() {
    let mut fx = fx(
        only(
            RuleKind::PairCancellations,
            rule(0.0, 2, 24 * 60 * MIN as u64),
        ),
        1000,
    )
    .await;
    cancelled_at_pickup(&mut fx, 7, MIN).await;
    cancelled_at_pickup(&mut fx, 8, 2 * MIN).await;
    // Cancelled before any driver reached the restaurant: not at pickup.
    let o = fx.order(1).await;
    fx.cancel(&o, Actor::Customer(CustomerId(1)), 3 * MIN).await;
    assert_eq!(fx.score().await, vec![], "two drivers, once each");
    cancelled_at_pickup(&mut fx, 7, 4 * MIN).await;
    let flags = fx.score().await;
    assert_eq!(rules_of(&flags), [RuleKind::PairCancellations]);
    assert_eq!(
        flags[0].subject,
        format!("driver:7/restaurant:{}", catalog::testing::rid(1))
    );
}

#[tokio::test]
async fn flags_survive_a_restart_with_their_review_and_a_replay_writes_nothing_twice() {
    let cfg = only(RuleKind::BillingCountry, rule(0.0, 0, 0));
    let mut fx = fx(cfg.clone(), 1000).await;
    fx.place(1, 1, 1, 0.001, PM_BILLING_GB).await;
    fx.place(2, 1, 1, 0.001, PM_BILLING_GB).await;
    assert_eq!(fx.score().await.len(), 2);
    // The consumer replays the batch (a crash before its cursor was saved).
    fx.cursor = LogPos(0);
    assert_eq!(fx.score().await, vec![], "a replay raises nothing");
    let first = fx.all().await.pop().unwrap();
    let review = super::Review {
        role: "support".into(),
        name: Some("Sam".into()),
        decision: super::Decision::Confirm,
        note: "card reported stolen".into(),
        at: NOON.0 + MIN,
    };
    let (_, open) = flags::review(&*fx.kv, &first.id, review.clone())
        .await
        .unwrap();
    assert_eq!(open, 1);

    // Restart: drop everything and reopen the same directory.
    let Fx {
        dir,
        kv,
        orders,
        scorer,
        payments,
        ..
    } = fx;
    drop((kv, orders, scorer, payments));
    let fx = fx_in(dir, cfg, 1000, false).await;
    let all = fx.all().await;
    assert_eq!(all.len(), 2);
    let again = flags::get(&*fx.kv, &first.id).await.unwrap().unwrap();
    assert_eq!(again.state, super::FlagState::Confirmed);
    assert_eq!(again.review, Some(review));
    assert_eq!(flags::open_count(&*fx.kv).await.unwrap(), 1);
    let open = flags::list(
        &*fx.kv,
        Filter {
            state: Some(super::FlagState::Open),
            rule: Some(RuleKind::BillingCountry),
        },
        None,
        10,
    )
    .await
    .unwrap();
    assert_eq!(open.flags.len(), 1);
    assert_ne!(open.flags[0].id, first.id);
    let _ = fx.dir.path();
}

#[tokio::test]
async fn listing_pages_newest_first_and_a_flag_is_reviewed_once() {
    let cfg = only(RuleKind::GpsSpoof, rule(0.0, 0, 0));
    let fx = fx(cfg.clone(), 1000).await;
    for i in 0..5u64 {
        let s = Signal::Spoofed {
            driver: DriverId(1),
            lat: LAT,
            lng: LNG,
            implied_mps: 900.0,
            ts_ms: i,
            at: UnixMs(NOON.0 + i as i64),
        };
        let f = signals::flag_for(&s, &cfg).unwrap();
        assert!(
            signals::store_flag(&*fx.kv, f.clone())
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(
            signals::store_flag(&*fx.kv, f).await.unwrap(),
            None,
            "stored once"
        );
    }
    let p1 = flags::list(&*fx.kv, Filter::default(), None, 2)
        .await
        .unwrap();
    let p2 = flags::list(&*fx.kv, Filter::default(), p1.next.as_deref(), 2)
        .await
        .unwrap();
    let p3 = flags::list(&*fx.kv, Filter::default(), p2.next.as_deref(), 2)
        .await
        .unwrap();
    let times: Vec<i64> = [p1.flags, p2.flags, p3.flags.clone()]
        .concat()
        .iter()
        .map(|f| f.created_at - NOON.0)
        .collect();
    assert_eq!(times, [4, 3, 2, 1, 0]);
    assert_eq!(p3.next, None);
    let id = &p3.flags[0].id;
    let review = |d| super::Review {
        role: "admin".into(),
        name: None,
        decision: d,
        note: String::new(),
        at: NOON.0,
    };
    let (f, open) = flags::review(&*fx.kv, id, review(super::Decision::Clear))
        .await
        .unwrap();
    assert_eq!((f.state, open), (super::FlagState::Cleared, 4));
    assert!(matches!(
        flags::review(&*fx.kv, id, review(super::Decision::Confirm)).await,
        Err(super::FlagError::AlreadyReviewed(_))
    ));
    assert!(matches!(
        flags::review(&*fx.kv, "1-nothing.here", review(super::Decision::Confirm)).await,
        Err(super::FlagError::NotFound(_))
    ));
}
