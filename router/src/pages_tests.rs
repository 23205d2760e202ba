//! Merged search pages over simulated cells (a cell here is its rows in its own order,
//! served page by page as `catalog::search` pages them): pages by number and by cursor
//! concatenate to the one sorted list, a cursor page survives a restaurant closing on an
//! earlier page, and resume positions spare the re-reading of a cell's first pages.

use super::*;

fn hit(d: u64, id: &str) -> Hit {
    Hit {
        distance_m: d,
        id: id.into(),
        pos: 0,
        body: json!({"id": id, "distance_m": d}),
    }
}

/// Page `page` of `size` rows of a cell holding `rows`, as the cell answers it.
fn serve(rows: &[Hit], page: u32, size: u32) -> CellPage {
    let start = ((page - 1) * size) as usize;
    let end = (start + size as usize).min(rows.len());
    CellPage {
        hits: rows.get(start..end).unwrap_or_default().to_vec(),
        next_page: (end < rows.len() && page < MAX_PAGE).then_some(page + 1),
        total: rows.len() as u64,
    }
}

/// Reads cell `cell` for `req`; also returns the pages it asked for.
fn read(cell: u32, rows: &[Hit], req: &SearchRequest) -> (CellHits, Vec<(u32, u32)>) {
    let mut r = CellReader::new(cell, req);
    let mut asked = Vec::new();
    loop {
        let (page, size) = r.request();
        asked.push((page, size));
        if !r.feed(serve(rows, page, size)) {
            return (r.finish(), asked);
        }
    }
}

fn search(cells: &[&[Hit]], req: &SearchRequest) -> Value {
    let got = cells
        .iter()
        .enumerate()
        .map(|(i, rows)| read(i as u32 + 1, rows, req).0)
        .collect();
    merge_search(got, &[], req)
}

fn ids(v: &Value) -> Vec<String> {
    v["restaurants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

fn by_page(page: u32, page_size: u32) -> SearchRequest {
    SearchRequest {
        page_size,
        page: Some(page),
        cursor: None,
    }
}

fn after(cursor: &Value, page_size: u32) -> SearchRequest {
    SearchRequest {
        page_size,
        page: None,
        cursor: Some(SearchCursor::decode(cursor.as_str().unwrap()).unwrap()),
    }
}

/// Two cells; in cell A, "a99" precedes "a00x" at the same rounded metre (its exact
/// distance is smaller), the case that breaks a naive top-N merge.
fn two_cells() -> (Vec<Hit>, Vec<Hit>) {
    let mut a = Vec::new();
    let mut b = Vec::new();
    for i in 0..80u64 {
        a.push(hit(100 + i * 7, &format!("a{i:02}")));
        b.push(hit(103 + i * 5, &format!("b{i:02}")));
    }
    a.insert(3, hit(120, "a99"));
    a.insert(4, hit(120, "a00x"));
    (a, b)
}

fn sorted(cells: &[&[Hit]]) -> Vec<String> {
    let mut all: Vec<&Hit> = cells.iter().flat_map(|c| c.iter()).collect();
    all.sort_by(|x, y| (x.distance_m, &x.id).cmp(&(y.distance_m, &y.id)));
    all.into_iter().map(|h| h.id.clone()).collect()
}

#[test]
fn pages_by_number_and_by_cursor_concatenate_to_the_sorted_list() {
    let (a, b) = two_cells();
    let cells: [&[Hit]; 2] = [&a, &b];
    let expected = sorted(&cells);
    for size in [1u32, 3, 7, 20, 50] {
        let (mut by_number, mut by_cursor) = (Vec::new(), Vec::new());
        let mut page = 1;
        loop {
            let v = search(&cells, &by_page(page, size));
            assert_eq!(v["total"], 162);
            assert_eq!(v["partial"], false);
            assert!(v.get("missing_cells").is_none());
            by_number.extend(ids(&v));
            match v["next_page"].as_u64() {
                Some(n) => page = n as u32,
                None => break,
            }
        }
        let mut v = search(&cells, &by_page(1, size));
        loop {
            by_cursor.extend(ids(&v));
            assert!(v["next_page"].is_null() || v["next_page"] == 2);
            if v["next_cursor"].is_null() {
                break;
            }
            v = search(&cells, &after(&v["next_cursor"], size));
        }
        assert_eq!(by_number, expected, "page size {size}");
        assert_eq!(by_cursor, expected, "page size {size}");
    }
}

#[test]
fn a_cursor_page_survives_a_restaurant_closing_on_an_earlier_page() {
    let (a, b) = two_cells();
    let first = search(&[&a, &b], &by_page(1, 5));
    let shown = ids(&first);
    // The second restaurant of page 1 closes before page 2 is asked for.
    let gone = shown[1].clone();
    let a2: Vec<Hit> = a.iter().filter(|h| h.id != gone).cloned().collect();
    let b2: Vec<Hit> = b.iter().filter(|h| h.id != gone).cloned().collect();
    let expected: Vec<String> = sorted(&[&a, &b])[5..10].to_vec();
    let by_cursor = search(&[&a2, &b2], &after(&first["next_cursor"], 5));
    assert_eq!(ids(&by_cursor), expected);
    // A page number shifts by the row that closed: one restaurant is never shown.
    let by_number = search(&[&a2, &b2], &by_page(2, 5));
    assert_eq!(ids(&by_number), sorted(&[&a, &b])[6..11].to_vec());
}

#[test]
fn a_deep_cursor_resumes_each_cell_near_where_it_stopped() {
    let (a, b) = two_cells();
    let cells: [&[Hit]; 2] = [&a, &b];
    let mut v = search(&cells, &by_page(1, 50));
    for _ in 0..2 {
        v = search(&cells, &after(&v["next_cursor"], 50));
    }
    let req = after(&v["next_cursor"], 10);
    let c = req.cursor.clone().unwrap();
    assert!(c.resume[&1] >= 50 && c.resume[&2] >= 50, "{c:?}");
    let (_, asked_a) = read(1, &a, &req);
    assert_eq!(
        asked_a[0],
        (c.resume[&1] / 50 + 1, 50),
        "starts at its resume page"
    );
    assert!(asked_a.len() <= 2, "{asked_a:?}");
    let expected = sorted(&cells);
    let at = expected.iter().position(|id| *id == c.id).unwrap() + 1;
    assert_eq!(ids(&search(&cells, &req)), expected[at..at + 10].to_vec());
    // A stale position (the cell lost rows, so its page starts past the cursor) reads the
    // cell from its first page again, and the page is still right.
    let short: Vec<Hit> = a.iter().skip(60).cloned().collect();
    let (_, asked) = read(1, &short, &req);
    assert_eq!(asked[1].0, 1, "{asked:?}");
    let v = search(&[&short, &b], &req);
    let mut want: Vec<&Hit> = short
        .iter()
        .chain(b.iter())
        .filter(|h| c.precedes(h))
        .collect();
    want.sort_by(|x, y| (x.distance_m, &x.id).cmp(&(y.distance_m, &y.id)));
    let want: Vec<String> = want.into_iter().take(10).map(|h| h.id.clone()).collect();
    assert_eq!(ids(&v), want);
}

#[test]
fn a_missing_cell_makes_the_page_partial_and_is_named() {
    let (a, _) = two_cells();
    let req = by_page(1, 5);
    let v = merge_search(vec![read(1, &a, &req).0], &["munich".into()], &req);
    assert_eq!(v["partial"], true);
    assert_eq!(v["missing_cells"], json!(["munich"]));
    assert_eq!(ids(&v), ["a00", "a01", "a02", "a00x", "a99"]);
}

#[test]
fn a_cell_is_read_past_ties_at_the_boundary() {
    let rows = [hit(1, "x"), hit(2, "y"), hit(2, "a"), hit(3, "z")];
    assert!(!enough(&rows[..2], 2), "the next row may tie at 2 m");
    assert!(!enough(&rows[..3], 2));
    assert!(enough(&rows, 2));
    assert!(!enough(&rows[..1], 2));
}

#[test]
fn paging_parameters_are_checked() {
    assert_eq!(
        SearchRequest::from_query(Some("lat=1&lng=2")),
        Ok(by_page(1, 20))
    );
    assert_eq!(
        SearchRequest::from_query(Some("page=3&page_size=50")).map(|r| (r.skip(), r.wanted())),
        Ok((100, 150))
    );
    for bad in [
        "page=0",
        "page=501",
        "page=x",
        "page_size=51",
        "page_size=0",
        "cursor=junk",
        "cursor=5_1_1-x",
        "page=2&cursor=5_1_",
    ] {
        assert!(SearchRequest::from_query(Some(bad)).is_err(), "{bad}");
    }
    let c = SearchCursor {
        distance_m: 812,
        id: "4611686018427387905".into(),
        resume: BTreeMap::from([(1, 20), (7, 3)]),
    };
    assert_eq!(c.encode(), "812_4611686018427387905_1-20.7-3");
    assert_eq!(SearchCursor::decode(&c.encode()), Some(c.clone()));
    // Only the documented form: `u32::from_str` took signs, and empty parts were skipped.
    for bad in [
        "+812_1_1-20",
        "812_1_+1-20",
        "812_1_1-20.",
        "812_1_.1-20",
        "812_a b_",
        "812__",
    ] {
        assert_eq!(SearchCursor::decode(bad), None, "{bad}");
    }
    let q = format!("page_size=9&cursor={}", c.encode());
    assert_eq!(
        SearchRequest::from_query(Some(&q)),
        Ok(SearchRequest {
            page_size: 9,
            page: None,
            cursor: Some(c)
        })
    );
}
