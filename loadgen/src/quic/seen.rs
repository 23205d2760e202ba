//! Loss per driver, measured: the cell's `GET /api/v1/admin/pings` (admin token) counts,
//! per driver, the pings it received, accepted, rejected and found stale, and the highest
//! `seq` seen. Read at the start and at the end of a run, the difference per driver is
//! what the cell got of that driver's pings during the run, so
//! `lost = sent − (received_end − received_start)` per driver, without guessing and
//! without other clients' traffic mixing in (they are other drivers).
//!
//! Shape: `{"drivers":[{"driver_id":"<decimal>","received":u64,"accepted":u64,
//! "rejected":u64,"stale":u64,"max_seq":u64}],"totals":{"received":…,"accepted":…,
//! "rejected":…,"stale":…}}`. A cell without the endpoint answers 404: the report then
//! says per-driver loss is unavailable and keeps the `/metrics` totals.

use crate::auth::Tokens;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// One driver's counters at the cell.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq)]
pub struct Seen {
    pub received: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub stale: u64,
    #[serde(default)]
    pub max_seq: u64,
}

#[derive(Debug, Deserialize)]
struct Row {
    driver_id: String,
    #[serde(flatten)]
    seen: Seen,
}

#[derive(Debug, Deserialize)]
struct Body {
    drivers: Vec<Row>,
}

/// The cell's counters per driver id.
pub type Snapshot = HashMap<u64, Seen>;

/// Parses the endpoint's body.
pub fn parse(body: &str) -> anyhow::Result<Snapshot> {
    let b: Body = serde_json::from_str(body)?;
    b.drivers
        .into_iter()
        .map(|r| {
            let id = r
                .driver_id
                .parse::<u64>()
                .map_err(|e| anyhow::anyhow!("driver_id {:?}: {e}", r.driver_id))?;
            Ok((id, r.seen))
        })
        .collect()
}

/// Fetches the counters; `Ok(None)` when the cell has no such endpoint (404).
pub async fn fetch(
    http: &reqwest::Client,
    base: &str,
    tokens: &Tokens,
) -> anyhow::Result<Option<Snapshot>> {
    let token = tokens.get("admin", "0").await?;
    let url = format!("{}/api/v1/admin/pings", base.trim_end_matches('/'));
    let resp = http.get(&url).bearer_auth(token).send().await?;
    if resp.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        anyhow::bail!("GET {url}: {status}: {}", &text[..text.len().min(200)]);
    }
    parse(&text).map(Some)
}

/// One driver's loss over the run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DriverLoss {
    pub driver_id: u64,
    pub sent: u64,
    /// Received by the cell during the run (end − start).
    pub received: u64,
    pub lost: u64,
}

/// Loss per driver, summed and the worst drivers.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct PerDriver {
    pub drivers: u64,
    pub sent: u64,
    pub received: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub stale: u64,
    /// Σ max(0, sent − received) over drivers.
    pub lost: u64,
    pub loss_pct: f64,
    /// Drivers that lost at least one ping.
    pub drivers_with_loss: u64,
    /// Drivers the cell counted more pings for than were sent (someone else used the id).
    pub drivers_over_counted: u64,
    /// Up to 10, most lost first.
    pub worst: Vec<DriverLoss>,
}

fn minus(a: Seen, b: Seen) -> Seen {
    Seen {
        received: a.received.saturating_sub(b.received),
        accepted: a.accepted.saturating_sub(b.accepted),
        rejected: a.rejected.saturating_sub(b.rejected),
        stale: a.stale.saturating_sub(b.stale),
        max_seq: a.max_seq,
    }
}

/// Per-driver loss from the pings each driver sent and two snapshots (a driver absent at
/// the start counts from zero; absent at the end received nothing).
pub fn per_driver(sent: &BTreeMap<u64, u64>, before: &Snapshot, after: &Snapshot) -> PerDriver {
    let mut p = PerDriver::default();
    let mut all = Vec::with_capacity(sent.len());
    for (&id, &n) in sent {
        let end = after.get(&id).copied().unwrap_or_default();
        let d = minus(end, before.get(&id).copied().unwrap_or_default());
        p.drivers += 1;
        p.sent += n;
        p.received += d.received;
        p.accepted += d.accepted;
        p.rejected += d.rejected;
        p.stale += d.stale;
        let lost = n.saturating_sub(d.received);
        p.lost += lost;
        p.drivers_with_loss += u64::from(lost > 0);
        p.drivers_over_counted += u64::from(d.received > n);
        all.push(DriverLoss {
            driver_id: id,
            sent: n,
            received: d.received,
            lost,
        });
    }
    all.sort_by(|a, b| b.lost.cmp(&a.lost).then(a.driver_id.cmp(&b.driver_id)));
    p.worst = all.into_iter().filter(|d| d.lost > 0).take(10).collect();
    p.loss_pct = if p.sent == 0 {
        0.0
    } else {
        p.lost as f64 * 100.0 / p.sent as f64
    };
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = r#"{"drivers":[
        {"driver_id":"7","received":10,"accepted":9,"rejected":1,"stale":0,"max_seq":10},
        {"driver_id":"8","received":5,"accepted":5,"rejected":0,"stale":0,"max_seq":5}],
        "totals":{"received":15,"accepted":14,"rejected":1,"stale":0}}"#;
    const AFTER: &str = r#"{"drivers":[
        {"driver_id":"7","received":110,"accepted":105,"rejected":3,"stale":2,"max_seq":110},
        {"driver_id":"8","received":55,"accepted":55,"rejected":0,"stale":0,"max_seq":60},
        {"driver_id":"9","received":40,"accepted":40,"rejected":0,"stale":0,"max_seq":40},
        {"driver_id":"99","received":1000,"accepted":1000,"rejected":0,"stale":0,"max_seq":1000}],
        "totals":{"received":1205,"accepted":1200,"rejected":3,"stale":2}}"#;

    #[test]
    fn parses_the_documented_shape() {
        let s = parse(BEFORE).unwrap();
        assert_eq!(s[&7].received, 10);
        assert_eq!(s[&8].max_seq, 5);
        assert!(parse(r#"{"drivers":[{"driver_id":"x","received":1,"accepted":1,"rejected":0,"stale":0}]}"#).is_err());
    }

    #[test]
    fn loss_per_driver_is_sent_minus_received_during_the_run() {
        let (b, a) = (parse(BEFORE).unwrap(), parse(AFTER).unwrap());
        // 7: sent 100, got 100. 8: sent 60, got 50 → 10 lost. 9: new, sent 45, got 40 → 5.
        // 10: sent 3, never seen → 3. 99 is someone else's driver: not ours, ignored.
        let sent = BTreeMap::from([(7, 100), (8, 60), (9, 45), (10, 3)]);
        let p = per_driver(&sent, &b, &a);
        assert_eq!(p.drivers, 4);
        assert_eq!(p.sent, 208);
        assert_eq!(p.received, 190);
        assert_eq!(p.lost, 18);
        assert_eq!((p.accepted, p.rejected, p.stale), (186, 2, 2));
        assert_eq!(p.drivers_with_loss, 3);
        assert_eq!(p.drivers_over_counted, 0);
        assert!((p.loss_pct - 18.0 * 100.0 / 208.0).abs() < 1e-9);
        let worst: Vec<(u64, u64)> = p.worst.iter().map(|d| (d.driver_id, d.lost)).collect();
        assert_eq!(worst, vec![(8, 10), (9, 5), (10, 3)]);
        // More received than sent (the id was used by another client too): flagged, not
        // negative loss.
        let p = per_driver(&BTreeMap::from([(7, 50)]), &b, &a);
        assert_eq!((p.lost, p.drivers_over_counted), (0, 1));
        assert_eq!(per_driver(&BTreeMap::new(), &b, &a).loss_pct, 0.0);
    }
}
