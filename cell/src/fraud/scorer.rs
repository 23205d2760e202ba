//! The scorer: a durable consumer of the cell's event log ([`CONSUMER`]) that runs the rules
//! on each event and stores the flags they raise.
//!
//! Per event: gather what the rules need outside any transaction (the order, its history, the
//! payment method's billing country from the provider, category medians from the catalog),
//! then one transaction reads and updates the counting windows and the totals histogram,
//! writes the flags, and records the event's position as applied. That position is checked
//! first, so an event replayed after a crash (the consume loop saves its cursor per batch)
//! changes nothing: effect and progress are one commit, as the design notes ask.
//!
//! A provider that cannot answer the billing-country read skips that rule for the order
//! (counted in `cell_fraud_rule_skipped_total{rule}`) rather than stalling every rule behind
//! the provider.

use super::config::FraudConfig;
use super::flags::{self, Flag};
use super::rules::{self, RuleKind, Totals, Window};
use catalog::Catalog;
use domain::{Actor, Cents, EventKind, Order, OrderEvent, RegionId, UnixMs};
use payments::PaymentGateway;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use store::keys::pack;
use store::{Kv, LogPos, TxnError};

/// The durable cursor's name in the store.
pub const CONSUMER: &str = "fraud";

fn applied_key() -> Vec<u8> {
    pack(&("fapplied",))
}

fn totals_key() -> Vec<u8> {
    pack(&("ftotals",))
}

fn window_key(rule: RuleKind, subject: &str) -> Vec<u8> {
    pack(&("fw", rule.as_str(), subject))
}

/// Restaurants read per page when computing a median.
const MEDIAN_PAGE: usize = 200;

/// A median of one category in one region, and when it was computed.
type Median = (Option<(Cents, usize)>, i64);

/// See the module doc.
pub struct Scorer {
    kv: Arc<dyn Kv>,
    payments: Arc<dyn PaymentGateway>,
    catalog: Arc<Catalog>,
    cfg: FraudConfig,
    /// Category medians per region, reused for `menu_price.window_ms`: computing one reads
    /// every menu of the region.
    medians: Mutex<HashMap<(RegionId, String), Median>>,
}

/// An occurrence for a counting rule.
#[derive(Debug, Clone)]
struct Count {
    rule: RuleKind,
    subject: String,
    extra: serde_json::Value,
}

/// Everything one event's transaction does, gathered beforehand.
#[derive(Debug, Clone, Default)]
struct Plan {
    /// Flags decided without stored state.
    flags: Vec<Flag>,
    /// Flags raised at most once per window for their subject (`menu_price`).
    once: Vec<Flag>,
    counts: Vec<Count>,
    /// The order's total, for the value rule and the histogram.
    total: Option<Cents>,
}

impl Scorer {
    pub fn new(
        kv: Arc<dyn Kv>,
        payments: Arc<dyn PaymentGateway>,
        catalog: Arc<Catalog>,
        cfg: FraudConfig,
    ) -> Scorer {
        Scorer {
            kv,
            payments,
            catalog,
            cfg,
            medians: Mutex::new(HashMap::new()),
        }
    }

    /// Scores one event; `Err` makes the consumer retry it (a store that cannot be read).
    pub async fn handle(&self, pos: LogPos, ev: &OrderEvent) -> Result<Vec<Flag>, String> {
        let plan = self.gather(pos, ev).await?;
        let (written, open) = self.commit(pos, ev, plan).await?;
        for f in &written {
            metrics::counter!("cell_fraud_flags_total", "rule" => f.rule.as_str()).increment(1);
            tracing::info!(flag = %f.id, rule = f.rule.as_str(), subject = %f.subject, "fraud flag raised");
        }
        if let Some(open) = open {
            metrics::gauge!("cell_fraud_flags_open").set(open as f64);
        }
        Ok(written)
    }

    async fn gather(&self, pos: LogPos, ev: &OrderEvent) -> Result<Plan, String> {
        let rules = &self.cfg.rules;
        let mut plan = Plan::default();
        let src = |rule: RuleKind| format!("e{}.{}", pos.0, rule.as_str());
        let at = ev.at;
        let read_err =
            |e: crate::orders::repo::RepoError| format!("reading order {}: {e}", ev.order_id);
        match ev.kind {
            EventKind::OrderCreated => {
                let Some(order) = crate::orders::repo::get(&*self.kv, ev.order_id)
                    .await
                    .map_err(read_err)?
                else {
                    return Ok(plan);
                };
                let customer = format!("customer:{}", order.customer_id);
                if rules.on(RuleKind::HighOrderValue) {
                    plan.total = Some(order.total);
                }
                let r = RuleKind::DeliveryDistance;
                if rules.on(r) {
                    let from = (order.restaurant_lat, order.restaurant_lng);
                    let to = (order.delivery_address.lat, order.delivery_address.lng);
                    if let Some(e) = rules::delivery_distance(from, to, rules.get(r)) {
                        plan.flags.push(Flag::new(
                            src(r),
                            r,
                            customer.clone(),
                            Some(order.id),
                            e,
                            at,
                        ));
                    }
                }
                let r = RuleKind::BillingCountry;
                // An order not authorized yet (queued through an outage) has no reference.
                if rules.on(r) && !order.payment_ref.is_empty() {
                    match self.payments.retrieve(&order.payment_ref).await {
                        Ok(Some(rec)) => {
                            let billing = rec.billing_country.as_deref();
                            if let Some(e) =
                                rules::billing_country(billing, &self.cfg.delivery_country)
                            {
                                plan.flags.push(Flag::new(
                                    src(r),
                                    r,
                                    customer.clone(),
                                    Some(order.id),
                                    e,
                                    at,
                                ));
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            metrics::counter!("cell_fraud_rule_skipped_total", "rule" => r.as_str())
                                .increment(1);
                            tracing::warn!(order_id = %order.id, error = %e, "billing country unknown: rule skipped");
                        }
                    }
                }
                if rules.on(RuleKind::MenuPrice) {
                    self.menu_prices(pos, &order, at, &mut plan).await;
                }
            }
            EventKind::OrderRejected => plan.counts.push(Count {
                rule: RuleKind::RestaurantRejections,
                subject: format!("restaurant:{}", ev.restaurant_id),
                extra: json!({"last_order_id": ev.order_id.to_string(), "last": "rejected"}),
            }),
            EventKind::OrderCancelled => {
                let Some((order, history)) =
                    crate::orders::repo::get_with_history(&*self.kv, ev.order_id)
                        .await
                        .map_err(read_err)?
                else {
                    return Ok(plan);
                };
                let last = json!({"last_order_id": order.id.to_string()});
                let by = history
                    .iter()
                    .rev()
                    .find(|h| h.event == EventKind::OrderCancelled)
                    .map(|h| h.by);
                match by {
                    Some(Actor::Customer(c)) => plan.counts.push(Count {
                        rule: RuleKind::CustomerCancellations,
                        subject: format!("customer:{c}"),
                        extra: last.clone(),
                    }),
                    Some(Actor::Restaurant(r)) => plan.counts.push(Count {
                        rule: RuleKind::RestaurantRejections,
                        subject: format!("restaurant:{r}"),
                        extra: json!({"last_order_id": order.id.to_string(), "last": "cancelled"}),
                    }),
                    _ => {}
                }
                // The order machine refuses a cancel once the food is picked up, so "after
                // pickup" is as late as it gets: the driver had reached the restaurant.
                let picked_up = history.iter().any(|h| {
                    matches!(
                        h.event,
                        EventKind::DriverAtRestaurant | EventKind::OrderPickedUp
                    )
                });
                let driver = history
                    .iter()
                    .rev()
                    .find_map(|h| h.driver_id)
                    .or(order.driver_id);
                if let (true, Some(d)) = (picked_up, driver) {
                    plan.counts.push(Count {
                        rule: RuleKind::PairCancellations,
                        subject: format!("driver:{d}/restaurant:{}", order.restaurant_id),
                        extra: last,
                    });
                }
            }
            _ => {}
        }
        plan.counts.retain(|c| rules.on(c.rule));
        Ok(plan)
    }

    /// `menu_price` for each line of a new order.
    async fn menu_prices(&self, pos: LogPos, order: &Order, at: UnixMs, plan: &mut Plan) {
        let r = RuleKind::MenuPrice;
        let rule = self.cfg.rules.get(r);
        let Ok(Some(menu)) = self.catalog.menu_shared(order.restaurant_id).await else {
            return;
        };
        let Ok(region) = order.restaurant_id.region() else {
            return;
        };
        for line in &order.items {
            let Some(cat) = menu
                .categories
                .iter()
                .find(|c| c.items.iter().any(|i| i.id == line.item_id))
            else {
                continue;
            };
            let median = self.median(region, &cat.name, at).await;
            if let Some(e) = rules::menu_price(&line.name, &cat.name, line.unit_price, median, rule)
            {
                let subject = format!("restaurant:{}/item:{}", order.restaurant_id, line.item_id);
                let src = format!("e{}.{}.{}", pos.0, r.as_str(), line.item_id);
                plan.once
                    .push(Flag::new(src, r, subject, Some(order.id), e, at));
            }
        }
    }

    /// The median price of `category` (case-insensitive) over the region's menus, and how
    /// many restaurants have it; cached for the rule's window.
    async fn median(
        &self,
        region: RegionId,
        category: &str,
        now: UnixMs,
    ) -> Option<(Cents, usize)> {
        let key = (region, category.to_lowercase());
        let reuse = i64::try_from(self.cfg.rules.menu_price.window_ms).unwrap_or(i64::MAX);
        if let Some((m, at)) = lock(&self.medians).get(&key)
            && now.0.saturating_sub(*at) < reuse
        {
            return *m;
        }
        let mut prices = Vec::new();
        let mut restaurants = 0;
        // Paged reads past the menu cache: a region's worth of menus would evict the hot ones.
        let mut after = None;
        loop {
            let Ok((page, more)) = self
                .catalog
                .export_region_page(region, after, MEDIAN_PAGE)
                .await
            else {
                break;
            };
            after = page.last().map(|(r, _)| r.id);
            for (_, menu) in &page {
                let mut has = false;
                for c in menu
                    .categories
                    .iter()
                    .filter(|c| c.name.to_lowercase() == key.1)
                {
                    has = true;
                    prices.extend(c.items.iter().map(|i| i.price));
                }
                restaurants += usize::from(has);
            }
            if !more || after.is_none() {
                break;
            }
        }
        let m = rules::median(prices).map(|m| (m, restaurants));
        lock(&self.medians).insert(key, (m, now.0));
        m
    }

    /// The event's transaction: see the module doc. Returns the flags written and the open
    /// count after them (`None` when the event had been applied already).
    async fn commit(
        &self,
        pos: LogPos,
        ev: &OrderEvent,
        plan: Plan,
    ) -> Result<(Vec<Flag>, Option<u64>), String> {
        let rules = self.cfg.rules.clone();
        let (at, order, pos_src) = (ev.at, ev.order_id, pos.0);
        let plan = Arc::new(plan);
        let r = store::transact(&*self.kv, move |txn| {
            let (plan, rules) = (plan.clone(), rules.clone());
            Box::pin(async move {
                let applied = txn
                    .get(&applied_key())
                    .await?
                    .and_then(|b| LogPos::from_bytes(&b));
                if applied.is_some_and(|a| a >= pos) {
                    return Ok::<_, TxnError<()>>(Vec::new());
                }
                let mut candidates = plan.flags.clone();
                if let Some(total) = plan.total {
                    let mut totals: Totals = match txn.get(&totals_key()).await? {
                        Some(b) => serde_json::from_slice(&b).unwrap_or_default(),
                        None => Totals::default(),
                    };
                    let r = RuleKind::HighOrderValue;
                    if let Some(e) = rules::high_order_value(total, &totals, rules.get(r)) {
                        let src = format!("e{pos_src}.{}", r.as_str());
                        let subject = format!("order:{order}");
                        candidates.push(Flag::new(src, r, subject, Some(order), e, at));
                    }
                    totals.add(total);
                    txn.set(
                        &totals_key(),
                        &serde_json::to_vec(&totals).expect("serializes"),
                    );
                }
                for c in &plan.counts {
                    let key = window_key(c.rule, &c.subject);
                    let mut w: Window = match txn.get(&key).await? {
                        Some(b) => serde_json::from_slice(&b).unwrap_or_default(),
                        None => Window::default(),
                    };
                    let rule = rules.get(c.rule);
                    if let Some(times) = w.push(at.0, rule) {
                        let src = format!("e{pos_src}.{}", c.rule.as_str());
                        let e = rules::counted(&times, rule, c.extra.clone());
                        candidates.push(Flag::new(
                            src,
                            c.rule,
                            c.subject.clone(),
                            Some(order),
                            e,
                            at,
                        ));
                    }
                    txn.set(&key, &serde_json::to_vec(&w).expect("serializes"));
                }
                for f in &plan.once {
                    let key = flags::dup_key(f.rule, &f.subject);
                    let window = i64::try_from(rules.get(f.rule).window_ms).unwrap_or(i64::MAX);
                    let last = txn
                        .get(&key)
                        .await?
                        .and_then(|b| b.try_into().ok().map(i64::from_be_bytes));
                    if last.is_some_and(|l| at.0.saturating_sub(l) < window) {
                        continue;
                    }
                    txn.set(&key, &at.0.to_be_bytes());
                    candidates.push(f.clone());
                }
                let mut written = Vec::new();
                for f in candidates {
                    if flags::insert(txn, &f).await? {
                        written.push(f);
                    }
                }
                txn.set(&applied_key(), &pos.to_bytes());
                Ok(written)
            })
        })
        .await;
        let written = r.map_err(|e| format!("committing fraud flags: {e}"))?;
        let open = if written.is_empty() {
            None
        } else {
            flags::open_count(&*self.kv).await.ok()
        };
        Ok((written, open))
    }
}

/// The median cache guards plain data: a panic elsewhere cannot leave it inconsistent.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
