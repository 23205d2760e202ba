//! Restaurants: the demo city's restaurants (generated from the seed and imported into the
//! catalog), each hearing of a new order by push, answering it (sometimes rejecting), and
//! cooking it in a time drawn around its usual preparation time.

use crate::apps::{KitchenCmd, Msg, Reply};
use crate::config::{MINUTE_MS, SimConfig};
use crate::providers::Shown;
use crate::world::{Ev, World};
use catalog::Catalog;
use cell::notify::Recipient;
use domain::{EventKind, OrderId, RestaurantId};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A restaurant as the simulation needs it.
#[derive(Debug, Clone)]
pub struct Spot {
    pub id: RestaurantId,
    pub lat: f64,
    pub lng: f64,
    /// Available items, each with the options its required groups need.
    pub items: Vec<(domain::MenuItemId, Vec<String>)>,
    pub prep_min: u32,
    pub radius_m: f64,
}

/// Where a kitchen is with an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    New,
    Answering,
    Accepted,
    Cooking,
    Ready,
    Closed,
}

#[derive(Debug, Clone)]
pub struct Kitchen {
    pub spot: usize,
    pub stage: Stage,
    /// When the food was ready (the driver can take it from then on).
    pub ready_at: Option<i64>,
}

pub struct Restaurants {
    pub spots: Vec<Spot>,
    by_id: BTreeMap<RestaurantId, usize>,
    pub kitchens: BTreeMap<OrderId, Kitchen>,
}

impl Restaurants {
    /// Generates the city's restaurants into the store's catalog (before the cell starts).
    pub async fn seed(
        kv: &Arc<dyn store::Kv>,
        cfg: &SimConfig,
        _rng: &mut ChaCha8Rng,
    ) -> Result<Restaurants, String> {
        let spec = catalog::demo::DemoSpec {
            restaurants: cfg.restaurants,
            radius_km: 5.0,
            ..catalog::demo::DemoSpec::berlin(cfg.seed)
        };
        let list = catalog::demo::generate(&spec).map_err(|e| e.to_string())?;
        let cat = Catalog::load(kv.clone()).await.map_err(|e| e.to_string())?;
        let mut spots = Vec::new();
        for (r, menu) in &list {
            let items: Vec<_> = menu
                .items()
                .filter(|i| i.available)
                .map(|i| {
                    let picks = i
                        .customizations
                        .iter()
                        .filter(|g| g.required || g.min > 0)
                        .flat_map(|g| g.options.iter().take(usize::from(g.min.max(1))))
                        .map(|o| o.name.clone())
                        .collect();
                    (i.id, picks)
                })
                .collect();
            if items.is_empty() {
                continue;
            }
            spots.push(Spot {
                id: r.id,
                lat: r.lat,
                lng: r.lng,
                items,
                prep_min: r.prep_time_min.max(5),
                radius_m: f64::from(r.delivery_radius_m),
            });
        }
        cat.import(list).await.map_err(|e| e.to_string())?;
        let by_id = spots.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
        Ok(Restaurants {
            spots,
            by_id,
            kitchens: BTreeMap::new(),
        })
    }

    pub fn ready(&self, o: OrderId, now: i64) -> bool {
        self.kitchens
            .get(&o)
            .and_then(|k| k.ready_at)
            .is_some_and(|t| t <= now)
    }
}

impl World {
    /// A push reached someone's phone.
    pub(crate) fn on_notification(&mut self, n: Shown) {
        if n.kind != EventKind::OrderCreated {
            return;
        }
        let Recipient::Restaurant(r) = n.recipient else {
            return;
        };
        let Some(&spot) = self.restaurants.by_id.get(&r) else {
            return;
        };
        if self.restaurants.kitchens.contains_key(&n.order) {
            return;
        }
        self.restaurants.kitchens.insert(
            n.order,
            Kitchen {
                spot,
                stage: Stage::New,
                ready_at: None,
            },
        );
        let d = self.rng.random_range(20_000..120_000);
        self.at(d, Ev::Kitchen(n.order));
    }

    pub(crate) fn kitchen(&mut self, o: OrderId) {
        let Some(k) = self.restaurants.kitchens.get(&o).cloned() else {
            return;
        };
        let rid = self.restaurants.spots[k.spot].id;
        let next = match k.stage {
            Stage::New => {
                let reject = self.rng.random_bool(0.04);
                let cmd = if reject {
                    KitchenCmd::Reject
                } else {
                    KitchenCmd::Accept
                };
                self.send(Msg::Kitchen(o, rid, cmd));
                if reject {
                    Stage::Closed
                } else {
                    Stage::Answering
                }
            }
            Stage::Accepted => {
                self.send(Msg::Kitchen(o, rid, KitchenCmd::Preparing));
                let mean = f64::from(self.restaurants.spots[k.spot].prep_min);
                let minutes = mean * self.rng.random_range(0.6..1.6);
                self.at((minutes * MINUTE_MS as f64) as i64, Ev::Kitchen(o));
                Stage::Cooking
            }
            Stage::Cooking => {
                self.send(Msg::Kitchen(o, rid, KitchenCmd::Ready));
                if let Some(k) = self.restaurants.kitchens.get_mut(&o) {
                    k.ready_at = Some(self.now);
                }
                Stage::Ready
            }
            Stage::Answering | Stage::Ready | Stage::Closed => k.stage,
        };
        if let Some(k) = self.restaurants.kitchens.get_mut(&o) {
            k.stage = next;
        }
    }

    pub(crate) fn kitchen_answer(&mut self, o: OrderId, cmd: KitchenCmd, reply: Reply) {
        if cmd != KitchenCmd::Accept {
            return;
        }
        if self.restaurants.kitchens.get(&o).map(|k| k.stage) != Some(Stage::Answering) {
            return;
        }
        // Refused: the tablet reads the order (its answer may have been lost while the
        // acceptance stood) and cooks if it was accepted.
        let accepted = match reply {
            Reply::Done(_) => true,
            _ => {
                let kv = self.node.as_ref().map(|n| n.kv.clone());
                let status =
                    kv.and_then(|kv| self.block(cell::orders::repo::get(&*kv, o)).ok().flatten());
                status.is_some_and(|s| {
                    s.status.is_active() && s.status != domain::OrderStatus::Pending
                })
            }
        };
        let Some(k) = self.restaurants.kitchens.get_mut(&o) else {
            return;
        };
        if accepted {
            k.stage = Stage::Accepted;
            let d = self.rng.random_range(10_000..60_000);
            self.at(d, Ev::Kitchen(o));
        } else {
            k.stage = Stage::Closed;
        }
    }
}
