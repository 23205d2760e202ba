//! Warm-up: searches at random points to find restaurants (and an address each one
//! delivers to), then their menus. Not recorded.

use super::Area;
use super::cart::{MenuDoc, SearchPage};
use crate::http::Http;
use anyhow::Context;
use std::collections::HashMap;
use tokio::task::JoinSet;

/// A restaurant found during warm-up.
#[derive(Debug, Clone)]
pub struct Restaurant {
    pub id: String,
    /// A point where a search returned it (so it delivers there).
    pub point: (f64, f64),
    pub menu: Option<MenuDoc>,
}

const PARALLEL: usize = 16;

/// Searches at `points` random points and reads up to `menus` menus, taking `tokens` in
/// turn: the cell limits each user's request rate (`[limits] per_user_rps`, burst
/// `per_user_burst`), and a warm-up sends as fast as it can.
pub async fn warm_up(
    http: &Http,
    tokens: &[String],
    area: &Area,
    points: usize,
    menus: usize,
) -> anyhow::Result<Vec<Restaurant>> {
    let mut found: HashMap<String, (f64, f64)> = HashMap::new();
    let pts: Vec<(f64, f64)> = {
        let mut rng = rand::rng();
        (0..points).map(|_| area.random_point(&mut rng)).collect()
    };
    anyhow::ensure!(!tokens.is_empty(), "warm-up needs a token");
    let token = |i: usize| tokens[i % tokens.len()].clone();
    for (c, chunk) in pts.chunks(PARALLEL).enumerate() {
        let mut set = JoinSet::new();
        for (j, &p) in chunk.iter().enumerate() {
            let (http, path) = (http.clone(), area.search_path(p));
            let token = token(c * PARALLEL + j);
            set.spawn(async move { (p, http.get_text(&path, Some(&token)).await) });
        }
        while let Some(r) = set.join_next().await {
            let (p, body) = r?;
            let page: SearchPage = serde_json::from_str(&body?).context("parsing a search page")?;
            for hit in page.restaurants {
                found.entry(hit.id).or_insert(p);
            }
        }
    }
    let mut pool: Vec<Restaurant> = found
        .into_iter()
        .map(|(id, point)| Restaurant {
            id,
            point,
            menu: None,
        })
        .collect();
    pool.sort_by(|a, b| a.id.cmp(&b.id));
    let ids: Vec<(usize, String)> = pool
        .iter()
        .take(menus)
        .enumerate()
        .map(|(i, r)| (i, r.id.clone()))
        .collect();
    for chunk in ids.chunks(PARALLEL) {
        let mut set = JoinSet::new();
        for (i, id) in chunk.iter().cloned() {
            let (http, token) = (http.clone(), token(i));
            let path = format!("/api/v1/restaurants/{id}/menu");
            set.spawn(async move { (i, http.get_text(&path, Some(&token)).await) });
        }
        while let Some(r) = set.join_next().await {
            let (i, body) = r?;
            pool[i].menu = Some(serde_json::from_str(&body?).context("parsing a menu")?);
        }
    }
    Ok(pool)
}
