//! Dispatch's side of location history (`crate::history`): the service the ping path records
//! carried orders' pings in, and the end of a delivery's path.

use super::Dispatch;
use domain::Order;
use std::sync::Arc;

impl Dispatch {
    /// Records carried orders' pings in `history` from now on (once; later calls are ignored).
    pub fn set_history(&self, history: Arc<crate::history::History>) {
        let _ = self.history.set(history);
    }

    /// The delivery `order` ended (delivered or cancelled): its path is closed.
    pub(super) fn end_path(&self, order: &Order) {
        if let (Some(h), Some(d)) = (self.history.get(), order.delivery_id) {
            h.finish(d);
        }
    }
}
