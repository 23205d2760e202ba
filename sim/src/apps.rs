//! Requests from the apps to the cell, over the simulated network: each is sent, arrives
//! (maybe twice, maybe never) as an [`Ev::ToCell`], is handled by the cell's own API with
//! `now` passed in, and its answer (maybe lost) goes back to the app. An app that hears
//! nothing in time sends the same request again, as a real app does.

use crate::net::From;
use crate::world::{Ev, World};
use cell::dispatch::{DispatchError, DriverUpdate};
use cell::orders::{OrderError, PlaceError, repo::RepoError};
use domain::{Actor, Command, CustomerId, DeliveryId, Order, OrderId, RestaurantId, UnixMs};
use rand::Rng;
use std::collections::BTreeMap;

/// How long an app waits for an answer before sending again.
const ANSWER_WAIT_MS: i64 = 8_000;
/// Sends per request before the app gives up.
const MAX_TRIES: u32 = 6;

/// A kitchen's step on an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KitchenCmd {
    Accept,
    Reject,
    Preparing,
    Ready,
}

/// What an app asks the cell.
#[derive(Debug, Clone)]
pub enum Msg {
    /// Placement `n` of the customers' book.
    Place(usize),
    Cancel(OrderId, CustomerId),
    Kitchen(OrderId, RestaurantId, KitchenCmd),
    Connect(usize),
    Respond(usize, DeliveryId, bool),
    Update(usize, DriverUpdate),
}

/// The cell's answer, as the app sees it.
#[derive(Debug, Clone)]
pub enum Reply {
    Placed(Order),
    /// Placement refused for good (cart, decline, limit), with a reason.
    NotPlaced(String),
    Done(Option<Order>),
    /// Refused for good (an illegal transition, an unknown delivery): the app moves on.
    Refused(String),
    /// Failed for now (store, provider): the app sends again later.
    Later(String),
}

#[derive(Debug, Default)]
pub struct Requests {
    next: u64,
    msgs: BTreeMap<u64, Msg>,
    /// Requests still waiting for an answer, with their sends so far.
    open: BTreeMap<u64, u32>,
}

fn transient_repo(e: &RepoError) -> bool {
    matches!(e, RepoError::Store(_))
}

fn order_reply(r: Result<(Order, domain::Transition), OrderError>) -> Reply {
    match r {
        Ok((o, _)) => Reply::Done(Some(o)),
        Err(OrderError::Repo(e)) if transient_repo(&e) => Reply::Later(e.to_string()),
        Err(e) => Reply::Refused(e.to_string()),
    }
}

fn dispatch_reply(r: Result<Option<Order>, DispatchError>) -> Reply {
    match r {
        Ok(o) => Reply::Done(o),
        Err(DispatchError::Order(OrderError::Repo(e))) if transient_repo(&e) => {
            Reply::Later(e.to_string())
        }
        Err(e) => Reply::Refused(e.to_string()),
    }
}

impl World {
    pub fn send(&mut self, msg: Msg) {
        self.req.next += 1;
        let id = self.req.next;
        self.req.msgs.insert(id, msg);
        self.req.open.insert(id, 0);
        self.transmit(id);
    }

    fn sender(&self, msg: &Msg) -> From {
        match msg {
            Msg::Place(_) | Msg::Cancel(..) => From::Customer,
            Msg::Kitchen(..) => From::Restaurant,
            Msg::Connect(d) | Msg::Respond(d, ..) | Msg::Update(d, _) => {
                From::Driver(self.driver_id(*d).0)
            }
        }
    }

    fn transmit(&mut self, id: u64) {
        let Some(msg) = self.req.msgs.get(&id) else {
            return;
        };
        let from = self.sender(msg);
        if let Some(n) = self.req.open.get_mut(&id) {
            *n += 1;
        }
        for at in self.net.send(self.now, from) {
            self.queue.push(at, Ev::ToCell(id));
        }
        self.at(ANSWER_WAIT_MS, Ev::Timeout(id));
    }

    pub(crate) fn timeout(&mut self, id: u64) {
        let Some(&tries) = self.req.open.get(&id) else {
            return;
        };
        if tries >= MAX_TRIES {
            self.req.open.remove(&id);
            let msg = self.req.msgs[&id].clone();
            self.log(|| format!("req {id} given up {msg:?}"));
            self.gave_up(msg);
            return;
        }
        self.transmit(id);
    }

    /// A copy of request `id` reached the cell: the cell handles it (every copy: a duplicate
    /// is handled again, as the cell would), and the answer goes back unless lost.
    pub(crate) fn arrive(&mut self, id: u64) -> bool {
        if self.node.is_none() {
            // Connection refused while the cell is down: the app's timer sends again.
            return false;
        }
        let msg = self.req.msgs[&id].clone();
        let reply = self.execute(&msg);
        let lost = self.net.send(self.now, From::Customer).is_empty();
        self.log(|| {
            format!(
                "req {id} {msg:?} -> {}{}",
                brief(&reply),
                if lost { " (answer lost)" } else { "" }
            )
        });
        if lost || !self.req.open.contains_key(&id) {
            return true;
        }
        if let Reply::Later(_) = reply {
            // The app waits for its timer and sends again.
            return true;
        }
        self.req.open.remove(&id);
        self.on_reply(msg, reply);
        true
    }

    fn execute(&mut self, msg: &Msg) -> Reply {
        let now = UnixMs(self.now);
        let Some(node) = self.node.as_ref() else {
            return Reply::Later("down".into());
        };
        let (orders, dispatch) = (node.orders.clone(), node.dispatch.clone());
        match msg {
            Msg::Place(n) => {
                let req = self.customers.request(*n, &self.restaurants);
                match self.block(orders.place(req, now)) {
                    Ok(p) => Reply::Placed(p.order),
                    Err(PlaceError::Repo(e)) if transient_repo(&e) => Reply::Later(e.to_string()),
                    Err(PlaceError::Cart(catalog::CartError::Unavailable(e))) => Reply::Later(e),
                    Err(e) => Reply::NotPlaced(e.to_string()),
                }
            }
            Msg::Cancel(o, c) => {
                let cmd = Command::Cancel {
                    reason: "customer".into(),
                };
                order_reply(self.block(orders.transition(*o, cmd, Actor::Customer(*c), now)))
            }
            Msg::Kitchen(o, r, k) => {
                let cmd = match k {
                    KitchenCmd::Accept => Command::Accept,
                    KitchenCmd::Reject => Command::Reject {
                        reason: "too busy".into(),
                    },
                    KitchenCmd::Preparing => Command::StartPreparing,
                    KitchenCmd::Ready => Command::MarkReady,
                };
                order_reply(self.block(orders.transition(*o, cmd, Actor::Restaurant(*r), now)))
            }
            Msg::Connect(d) => {
                let id = self.driver_id(*d);
                let (session, rx, _) = dispatch.connect(id, now);
                self.drivers.connected(*d, session, rx);
                let r = self.block(dispatch.update(id, DriverUpdate::Online, now));
                dispatch_reply(r)
            }
            Msg::Respond(d, delivery, accept) => {
                let id = self.driver_id(*d);
                dispatch_reply(self.block(dispatch.respond(id, *delivery, *accept, now)))
            }
            Msg::Update(d, u) => {
                let id = self.driver_id(*d);
                dispatch_reply(self.block(dispatch.update(id, *u, now)))
            }
        }
    }

    fn on_reply(&mut self, msg: Msg, reply: Reply) {
        match msg {
            Msg::Place(n) => self.placed(n, reply),
            Msg::Cancel(..) => {}
            Msg::Kitchen(o, _, k) => self.kitchen_answer(o, k, reply),
            Msg::Connect(d) => self.sync_driver(d),
            Msg::Respond(d, delivery, accept) => self.responded(d, delivery, accept, reply),
            Msg::Update(d, u) => self.updated(d, u, reply),
        }
    }

    fn gave_up(&mut self, msg: Msg) {
        match msg {
            Msg::Place(n) => self.placed(n, Reply::NotPlaced("no answer".into())),
            Msg::Update(d, u) => self.updated(d, u, Reply::Refused("no answer".into())),
            Msg::Respond(d, delivery, accept) => {
                self.responded(d, delivery, accept, Reply::Refused("no answer".into()))
            }
            Msg::Connect(d) => {
                let delay = self.rng.random_range(1_000..5_000);
                self.at(delay, Ev::Reconnect(d));
            }
            Msg::Cancel(..) | Msg::Kitchen(..) => {}
        }
    }
}

fn brief(r: &Reply) -> String {
    match r {
        Reply::Placed(o) => format!("placed {} {}", o.id, o.status),
        Reply::NotPlaced(e) => format!("not placed: {e}"),
        Reply::Done(Some(o)) => format!("ok {} {}", o.id, o.status),
        Reply::Done(None) => "ok".into(),
        Reply::Refused(e) => format!("refused: {e}"),
        Reply::Later(e) => format!("later: {e}"),
    }
}
