//! The drain's end, driven as the health checker drives it: the map lives on a model store
//! shared like a FoundationDB cluster (the router is one client, another client reads the
//! result back), and the `active_orders` counts are what two cells on one store report after
//! one of them drained (`cell/src/orders/cells_tests.rs` shows they are 0 for the drained cell
//! and > 0 for the other). Only the catalog copy of a move needs the cells' HTTP APIs, so the
//! move is committed to the map directly, as `move_locked` commits it after the copy.

use super::Control;
use crate::cells::CellClient;
use crate::mapstore::MapStore;
use crate::table::Live;
use cellmap::{CellMap, CellState, Change, RegionKey};
use domain::{CellId, RegionId};
use std::sync::Arc;
use std::time::Duration;
use store::model::{ModelDb, ModelFaults};

fn id(n: u32) -> CellId {
    CellId::new(n).unwrap()
}

fn state(map: &CellMap, n: u32) -> CellState {
    map.cell(id(n)).expect("the cell is in the map").state
}

#[tokio::test]
async fn a_draining_cell_with_no_region_and_no_active_order_becomes_drained_alone() {
    let db = ModelDb::new(ModelFaults::none());
    let sre = MapStore::new(db.kv());
    let region = RegionKey(RegionId::from_latlng(52.5, 13.4).unwrap());
    let add = |n: u32, regions: Vec<RegionKey>| Change::AddCell {
        cell: crate::testing::cell_info(n, &format!("c{n}")),
        regions,
    };
    sre.commit(None, add(1, vec![region]), "sre".into(), 1)
        .await
        .unwrap();
    sre.commit(None, add(2, vec![]), "sre".into(), 2)
        .await
        .unwrap();
    let draining = Change::SetState {
        cell: id(1),
        state: CellState::Draining,
    };
    sre.commit(None, draining, "sre".into(), 3).await.unwrap();

    // The router: another client of the same database. Its map pushes to the fixture
    // addresses fail fast (best effort, logged).
    let keys = auth::JwtKeys::from_secret(b"k");
    let control = Control::new(
        Arc::new(Live::default()),
        Some(MapStore::new(db.kv())),
        None,
        CellClient::new(keys, Duration::from_secs(1), None),
        Duration::from_secs(1),
    );
    control.refresh().await.unwrap();

    // Still owning its region, a cell with nothing active is not drained yet.
    control.drain_progress(id(1), 0).await;
    assert_eq!(state(&sre.load().await.unwrap(), 1), CellState::Draining);

    sre.commit(
        None,
        Change::MoveRegion { region, to: id(2) },
        "sre".into(),
        4,
    )
    .await
    .unwrap();
    control.refresh().await.unwrap();
    // Its last orders are still active: not yet.
    control.drain_progress(id(1), 3).await;
    // The other cell has active orders; being active, it is never drained by this.
    control.drain_progress(id(2), 5).await;
    let map = sre.load().await.unwrap();
    assert_eq!(
        (state(&map, 1), state(&map, 2)),
        (CellState::Draining, CellState::Active)
    );

    // Nothing active any more (what the drained cell reports): drained, while the other
    // cell keeps its orders and stays active.
    control.drain_progress(id(1), 0).await;
    control.drain_progress(id(2), 5).await;
    let map = sre.load().await.unwrap();
    assert_eq!(
        (state(&map, 1), state(&map, 2)),
        (CellState::Drained, CellState::Active)
    );
    assert_eq!(map.regions_of(id(2)), vec![region]);
    let last = &sre.audit(1).await.unwrap()[0];
    assert_eq!(
        (last.version, last.who.as_str()),
        (map.version, "router:drain")
    );
    assert_eq!(
        control.live.load().map.version,
        map.version,
        "installed live"
    );
}
