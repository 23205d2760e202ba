//! What a region move reads and writes. The router lists a cell's regions, then copies one
//! region's restaurants page by page: export from the source, import into the target.
//!
//! Export pages by restaurant id (`after`), so a copy that stops half-way resumes where it
//! stopped; import is an upsert, so replaying a page changes nothing.

use cellmap::RegionKey;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// Largest export page a cell serves.
pub const MAX_EXPORT_PAGE: usize = 1_000;

/// Export page size when the query names none.
pub const DEFAULT_EXPORT_PAGE: usize = 200;

/// A JSON value kept as its text: the router copies catalog records from one cell to another
/// without reading them, so it neither parses them into a tree nor depends on their types.
pub type RawJson = Box<RawValue>;

/// The regions a cell holds restaurants in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RegionsResponse {
    /// H3 region (resolution 5) → restaurants this cell holds in it.
    #[schema(value_type = BTreeMap<String, u64>)]
    pub regions: BTreeMap<RegionKey, u64>,
}

/// Which export page to send.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Restaurant id to continue after (exclusive); empty: from the start.
    #[param(pattern = r"^(?:[0-9]{1,19})?$")]
    pub after: Option<String>,
    /// Page size, 1..=1000 (default 200).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

impl ExportQuery {
    /// The query string (without `?`) of this request; absent fields are left out.
    pub fn to_query_string(&self) -> String {
        let mut parts = Vec::new();
        if let Some(after) = &self.after {
            parts.push(format!("after={}", escape(after)));
        }
        if let Some(limit) = self.limit {
            parts.push(format!("limit={limit}"));
        }
        parts.join("&")
    }
}

/// Percent-encodes all but RFC 3986 unreserved characters. Restaurant ids are decimal and pass
/// unchanged; anything else must not break the query apart.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One restaurant with its menu.
//
// The cell reads `RegionEntry<Restaurant, Menu>`; the router keeps both as [`RawJson`] (the
// default), so the catalog's types stay the cell's business.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(bound = "")]
pub struct RegionEntry<R = RawJson, M = RawJson> {
    #[schema(value_type = Object)]
    pub restaurant: R,
    #[schema(value_type = Object)]
    pub menu: M,
}

/// One page of a region's restaurants, in restaurant id order.
//
// The document shows the wire shape, whatever the entry type a side reads it into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(bound = "")]
pub struct ExportPage<E = RegionEntry> {
    #[schema(value_type = Vec<RegionEntry>)]
    pub restaurants: Vec<E>,
    /// Pass as `after` for the next page; absent on the last one.
    pub next_after: Option<String>,
}

/// Restaurants to upsert: an export page's entries, as exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(bound = "")]
pub struct ImportRequest<E = RegionEntry> {
    #[schema(value_type = Vec<RegionEntry>)]
    pub restaurants: Vec<E>,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImportResponse {
    pub imported: u64,
    /// Restaurants of the region this cell holds after the import.
    pub total_in_region: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::RegionId;
    use serde_json::{Value, json};

    /// Stands in for the cell's catalog types: the router must not need them.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Restaurant {
        id: String,
        name: String,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Menu {
        items: Vec<String>,
    }

    type TypedEntry = RegionEntry<Restaurant, Menu>;

    fn entry(id: &str) -> TypedEntry {
        RegionEntry {
            restaurant: Restaurant {
                id: id.into(),
                name: format!("r{id}"),
            },
            menu: Menu {
                items: vec!["soup".into()],
            },
        }
    }

    fn region() -> RegionKey {
        RegionKey(RegionId::from_latlng(52.52, 13.405).unwrap())
    }

    fn round_trip<T>(v: &T) -> T
    where
        T: Serialize + serde::de::DeserializeOwned,
    {
        serde_json::from_str(&serde_json::to_string(v).unwrap()).unwrap()
    }

    #[test]
    fn round_trips() {
        let regions = RegionsResponse {
            regions: BTreeMap::from([(region(), 12)]),
        };
        assert_eq!(round_trip(&regions), regions);
        let page = ExportPage {
            restaurants: vec![entry("1"), entry("2")],
            next_after: Some("2".into()),
        };
        assert_eq!(round_trip(&page), page);
        let last: ExportPage<TypedEntry> = ExportPage {
            restaurants: vec![],
            next_after: None,
        };
        assert_eq!(round_trip(&last), last);
        let import = ImportRequest {
            restaurants: vec![entry("3")],
        };
        assert_eq!(round_trip(&import), import);
        let answer = ImportResponse {
            imported: 1,
            total_in_region: 4,
        };
        assert_eq!(round_trip(&answer), answer);
        let q = ExportQuery {
            after: Some("5".into()),
            limit: Some(50),
        };
        assert_eq!(round_trip(&q), q);
    }

    /// The names each side relies on: the router reads `restaurants` and `next_after` and
    /// writes `restaurants`; the cell reads `restaurant` and `menu` of each entry.
    #[test]
    fn field_names_are_pinned() {
        let page = ExportPage {
            restaurants: vec![entry("1")],
            next_after: Some("1".into()),
        };
        let entry_json = json!({
            "restaurant": { "id": "1", "name": "r1" },
            "menu": { "items": ["soup"] },
        });
        assert_eq!(
            serde_json::to_value(&page).unwrap(),
            json!({ "restaurants": [entry_json.clone()], "next_after": "1" })
        );
        assert_eq!(
            serde_json::to_value(ImportRequest {
                restaurants: vec![entry("1")]
            })
            .unwrap(),
            json!({ "restaurants": [entry_json] })
        );
        assert_eq!(
            serde_json::to_value(ImportResponse {
                imported: 2,
                total_in_region: 3
            })
            .unwrap(),
            json!({ "imported": 2, "total_in_region": 3 })
        );
        let regions = RegionsResponse {
            regions: BTreeMap::from([(region(), 12)]),
        };
        assert_eq!(
            serde_json::to_value(&regions).unwrap(),
            json!({ "regions": { region().to_string(): 12 } })
        );
    }

    /// The router's untyped page (the defaults) carries the cell's records through unchanged:
    /// what it imports reads back as what the source exported.
    #[test]
    fn raw_entries_pass_through_unchanged() {
        let exported = ExportPage {
            restaurants: vec![entry("1"), entry("2")],
            next_after: None,
        };
        let wire = serde_json::to_string(&exported).unwrap();
        let seen: ExportPage = serde_json::from_str(&wire).unwrap();
        assert_eq!(seen.restaurants.len(), 2);
        assert_eq!(seen.next_after, None);
        let body = serde_json::to_string(&ImportRequest {
            restaurants: seen.restaurants,
        })
        .unwrap();
        let imported: ImportRequest<TypedEntry> = serde_json::from_str(&body).unwrap();
        assert_eq!(imported.restaurants, exported.restaurants);
        // Raw entries keep their text; a tree would not matter here, but a copy must not parse.
        let raw: RegionEntry =
            serde_json::from_str(r#"{"restaurant":{"b":1,"a":2},"menu":[]}"#).unwrap();
        assert_eq!(raw.restaurant.get(), r#"{"b":1,"a":2}"#);
        let _: Value = serde_json::from_str(raw.menu.get()).unwrap();
    }

    #[test]
    fn query_string_uses_the_field_names_the_cell_parses() {
        let q = ExportQuery {
            after: Some("42".into()),
            limit: Some(50),
        };
        assert_eq!(q.to_query_string(), "after=42&limit=50");
        let parsed: ExportQuery = serde_urlencoded::from_str(&q.to_query_string()).unwrap();
        assert_eq!(parsed, q);
        let first = ExportQuery {
            after: None,
            limit: Some(50),
        };
        assert_eq!(
            serde_urlencoded::from_str::<ExportQuery>(&first.to_query_string()).unwrap(),
            first
        );
        let odd = ExportQuery {
            after: Some("a&limit=1 é".into()),
            limit: None,
        };
        assert_eq!(odd.to_query_string(), "after=a%26limit%3D1%20%C3%A9");
        assert_eq!(
            serde_urlencoded::from_str::<ExportQuery>(&odd.to_query_string()).unwrap(),
            odd
        );
        assert_eq!(ExportQuery::default().to_query_string(), "");
    }
}
