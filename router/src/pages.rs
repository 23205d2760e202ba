//! Search pages merged from several cells. Pure: [`crate::fanout`] does the I/O, feeding
//! each cell's pages to a [`CellReader`] and the results to [`merge_search`]; nothing here
//! reads a clock or a socket.
//!
//! The merged order is `(distance_m, id)`: total, so a page ends at a definite row. The
//! `next_cursor` names that row (and, per cell, where in the cell's own order reading may
//! resume), and the next page is the rows after it: a restaurant opening or closing on an
//! earlier page shifts nothing, unlike a page number. A cell sorts by the exact distance,
//! which can order two restaurants of one rounded metre unlike their ids; [`enough`]
//! therefore reads a cell past the rounded distance of the last row wanted.

use crate::merge::{Refusal, mark_partial, query_param};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The cells' own paging bounds (`catalog::search`).
pub const MAX_PAGE: u32 = 500;
pub const MAX_PAGE_SIZE: u32 = 50;
pub const DEFAULT_PAGE_SIZE: u32 = 20;

/// Where a merged page ended: its last row's `(distance_m, id)`, and for each cell (by id)
/// the position in that cell's order just past the last row taken from it. The positions
/// only say where to start reading; which rows come next is decided by the key alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchCursor {
    pub distance_m: u64,
    pub id: String,
    pub resume: BTreeMap<u32, u32>,
}

/// 1 to `max` ASCII digits (`u32::from_str` alone takes a leading `+`).
fn digits<T: std::str::FromStr>(s: &str, max: usize) -> Option<T> {
    let ok = !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| s.parse().ok()).flatten()
}

impl SearchCursor {
    /// `{distance}_{id}_{cell}-{pos}.{cell}-{pos}`: URL-safe as long as ids are.
    pub fn encode(&self) -> String {
        let resume: Vec<String> = self
            .resume
            .iter()
            .map(|(c, p)| format!("{c}-{p}"))
            .collect();
        format!("{}_{}_{}", self.distance_m, self.id, resume.join("."))
    }

    /// Exactly the form the OpenAPI document's pattern for `cursor` states: no signs, no
    /// empty parts, digits where it says digits.
    pub fn decode(s: &str) -> Option<SearchCursor> {
        let (head, resume) = s.rsplit_once('_')?;
        let (d, id) = head.split_once('_')?;
        let id_char = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
        if id.is_empty() || id.len() > 64 || !id.bytes().all(id_char) {
            return None;
        }
        let parts: Vec<&str> = if resume.is_empty() {
            Vec::new()
        } else {
            resume.split('.').collect()
        };
        // One entry per cell in the map at most; a longer list is not ours.
        (parts.len() <= 1024).then_some(())?;
        let resume = parts
            .into_iter()
            .map(|p| {
                let (c, pos) = p.split_once('-')?;
                Some((digits(c, 9)?, digits(pos, 9)?))
            })
            .collect::<Option<BTreeMap<u32, u32>>>()?;
        Some(SearchCursor {
            distance_m: digits(d, 19)?,
            id: id.to_owned(),
            resume,
        })
    }

    /// Whether `h` comes after this cursor in the merged order.
    pub fn precedes(&self, h: &Hit) -> bool {
        (h.distance_m, h.id.as_str()) > (self.distance_m, self.id.as_str())
    }
}

/// A search request's paging: by page number (`page`, the cells' own way) or after a
/// cursor, `page_size` rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRequest {
    pub page_size: u32,
    /// `None` when paging by cursor.
    pub page: Option<u32>,
    pub cursor: Option<SearchCursor>,
}

impl SearchRequest {
    /// `page`, `page_size` and `cursor`, validated like the cell validates its own.
    pub fn from_query(query: Option<&str>) -> Result<SearchRequest, Refusal> {
        let page_size = match query_param(query, "page_size") {
            None => DEFAULT_PAGE_SIZE,
            Some(v) => v.parse().unwrap_or(0),
        };
        if page_size == 0 || page_size > MAX_PAGE_SIZE {
            return Err((
                "search.invalid_page_size",
                format!("page_size must be 1..={MAX_PAGE_SIZE}"),
            ));
        }
        let page = query_param(query, "page");
        let cursor = query_param(query, "cursor");
        if let Some(c) = cursor {
            if page.is_some() {
                return Err((
                    "search.invalid_cursor",
                    "page and cursor exclude each other".into(),
                ));
            }
            let cursor = SearchCursor::decode(c).ok_or_else(|| {
                (
                    "search.invalid_cursor",
                    "cursor is not a next_cursor of this API".to_owned(),
                )
            })?;
            return Ok(SearchRequest {
                page_size,
                page: None,
                cursor: Some(cursor),
            });
        }
        let page = page.map_or(1, |v| v.parse().unwrap_or(0));
        if page == 0 || page > MAX_PAGE {
            return Err((
                "search.invalid_page",
                format!("page must be 1..={MAX_PAGE}"),
            ));
        }
        Ok(SearchRequest {
            page_size,
            page: Some(page),
            cursor: None,
        })
    }

    /// Merged rows (after the cursor) skipped before this page: the earlier pages.
    pub fn skip(&self) -> usize {
        self.page
            .map_or(0, |p| (p as usize - 1) * self.page_size as usize)
    }

    /// Merged rows (after the cursor) up to the end of this page.
    pub fn wanted(&self) -> usize {
        self.skip() + self.page_size as usize
    }
}

/// One search result as a cell sent it, with its merge key and its position in the cell's
/// own order.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub distance_m: u64,
    pub id: String,
    pub pos: u32,
    pub body: Value,
}

impl Hit {
    /// `None` when the row lacks `distance_m` or `id` (then the cell's answer is unusable).
    pub fn from_json(v: Value) -> Option<Hit> {
        let distance_m = v.get("distance_m")?.as_u64()?;
        let id = v.get("id")?.as_str()?.to_owned();
        Some(Hit {
            distance_m,
            id,
            pos: 0,
            body: v,
        })
    }
}

/// One cell's search page (`{restaurants, next_page, total}`), parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct CellPage {
    pub hits: Vec<Hit>,
    pub next_page: Option<u32>,
    pub total: u64,
}

impl CellPage {
    pub fn from_json(v: &Value) -> Option<CellPage> {
        let hits = v
            .get("restaurants")?
            .as_array()?
            .iter()
            .cloned()
            .map(Hit::from_json)
            .collect::<Option<Vec<_>>>()?;
        Some(CellPage {
            hits,
            next_page: v.get("next_page").and_then(Value::as_u64).map(|p| p as u32),
            total: v.get("total")?.as_u64()?,
        })
    }
}

/// What was read of one cell: its rows after the cursor, in its order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CellHits {
    pub cell: u32,
    pub hits: Vec<Hit>,
    pub total: u64,
    /// The cell had rows past those read.
    pub more: bool,
}

/// Whether `hits` (one cell's rows after the cursor, in its order) hold every row the
/// merged list needs up to `wanted`: past `wanted` rows, and past the rounded distance of
/// the `wanted`-th. Rows at a smaller rounded distance all come before in the cell's exact
/// order.
pub fn enough(hits: &[Hit], wanted: usize) -> bool {
    match (hits.get(wanted.saturating_sub(1)), hits.last()) {
        (Some(boundary), Some(last)) => {
            hits.len() > wanted && last.distance_m > boundary.distance_m
        }
        _ => false,
    }
}

/// Reads one cell page by page: [`CellReader::request`] says which page to fetch next,
/// [`CellReader::feed`] takes the answer. With a cursor, reading starts at the page of the
/// cell's resume position, and from the first page again when that page does not begin
/// before the cursor's distance (rows before it closed, or it is another cell's cursor).
#[derive(Debug, Clone)]
pub struct CellReader {
    cursor: Option<SearchCursor>,
    wanted: usize,
    page: u32,
    page_size: u32,
    resuming: bool,
    acc: CellHits,
}

impl CellReader {
    pub fn new(cell: u32, req: &SearchRequest) -> CellReader {
        let wanted = req.wanted();
        let resume = req
            .cursor
            .as_ref()
            .and_then(|c| c.resume.get(&cell))
            .map_or(0, |p| p / MAX_PAGE_SIZE);
        let (page, page_size) = if resume > 0 {
            ((resume + 1).min(MAX_PAGE), MAX_PAGE_SIZE)
        } else {
            // One more than wanted sees past a tie at the last row, in one request.
            (1, (wanted + 1).min(MAX_PAGE_SIZE as usize) as u32)
        };
        CellReader {
            cursor: req.cursor.clone(),
            wanted,
            page,
            page_size,
            resuming: page > 1,
            acc: CellHits {
                cell,
                ..CellHits::default()
            },
        }
    }

    /// The cell page to fetch: `(page, page_size)`.
    pub fn request(&self) -> (u32, u32) {
        (self.page, self.page_size)
    }

    /// Takes the answer to [`CellReader::request`]; `true` when another page is needed.
    pub fn feed(&mut self, p: CellPage) -> bool {
        if std::mem::take(&mut self.resuming) {
            let before =
                |c: &SearchCursor| p.hits.first().is_some_and(|h| h.distance_m < c.distance_m);
            if !self.cursor.as_ref().is_some_and(before) {
                self.page = 1;
                self.page_size = (self.wanted + 1).min(MAX_PAGE_SIZE as usize) as u32;
                return true;
            }
        }
        let base = (self.page - 1) * self.page_size;
        for (i, mut h) in p.hits.into_iter().enumerate() {
            h.pos = base + i as u32;
            if self.cursor.as_ref().is_none_or(|c| c.precedes(&h)) {
                self.acc.hits.push(h);
            }
        }
        self.acc.total = p.total;
        self.acc.more = p.next_page.is_some();
        match p.next_page {
            Some(n) if n <= MAX_PAGE && !enough(&self.acc.hits, self.wanted) => {
                self.page = n;
                true
            }
            _ => false,
        }
    }

    pub fn finish(self) -> CellHits {
        self.acc
    }
}

/// The merged page: every cell's rows sorted by `(distance_m, id)` (one row per id), the
/// request's slice, `total` over the cells that answered, `next_page` (paging by number)
/// and `next_cursor` when rows remain, and `partial` with the cells that did not answer.
pub fn merge_search(cells: Vec<CellHits>, missing: &[String], req: &SearchRequest) -> Value {
    let total: u64 = cells.iter().map(|c| c.total).sum();
    let any_more = cells.iter().any(|c| c.more);
    let mut all: Vec<(u32, Hit)> = cells
        .into_iter()
        .flat_map(|c| c.hits.into_iter().map(move |h| (c.cell, h)))
        .collect();
    all.sort_by(|(_, a), (_, b)| (a.distance_m, &a.id).cmp(&(b.distance_m, &b.id)));
    // A restaurant answered by two cells (mid-move) counts once.
    all.dedup_by(|(_, a), (_, b)| a.id == b.id);
    let end = req.wanted().min(all.len());
    let more = any_more || all.len() > end;
    let mut resume = req
        .cursor
        .as_ref()
        .map(|c| c.resume.clone())
        .unwrap_or_default();
    for (cell, h) in &all[..end] {
        resume.insert(*cell, h.pos + 1);
    }
    let next_cursor = all[..end]
        .last()
        .filter(|_| more)
        .map(|(_, h)| SearchCursor {
            distance_m: h.distance_m,
            id: h.id.clone(),
            resume,
        });
    let start = req.skip().min(end);
    let restaurants: Vec<Value> = all.drain(start..end).map(|(_, h)| h.body).collect();
    let next_page = req.page.filter(|p| more && *p < MAX_PAGE).map(|p| p + 1);
    let mut out = json!({
        "restaurants": restaurants,
        "next_page": next_page,
        "next_cursor": next_cursor.map(|c| c.encode()),
        "total": total,
    });
    mark_partial(&mut out, missing);
    out
}

#[cfg(test)]
#[path = "pages_tests.rs"]
mod tests;
