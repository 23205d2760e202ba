//! Just enough of the menu and search bodies to build a valid cart: available items, and
//! for every required customization group its first `min` options.

use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize)]
pub struct MenuDoc {
    pub categories: Vec<Category>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Category {
    pub items: Vec<Item>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Item {
    pub id: String,
    pub available: bool,
    #[serde(default)]
    pub customizations: Vec<Group>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Group {
    #[serde(default)]
    pub min: u8,
    pub options: Vec<OptionName>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OptionName {
    pub name: String,
}

/// A search page: the restaurants' ids.
#[derive(Debug, Clone, Deserialize)]
pub struct SearchPage {
    pub restaurants: Vec<SearchHit>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SearchHit {
    pub id: String,
}

/// One line of `POST /api/v1/orders`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CartLine {
    pub item_id: String,
    pub quantity: u32,
    pub customizations: Vec<String>,
}

/// The options a line must carry: the first `min` options of each group that has one.
pub fn required_options(item: &Item) -> Vec<String> {
    item.customizations
        .iter()
        .flat_map(|g| g.options.iter().take(usize::from(g.min)))
        .map(|o| o.name.clone())
        .collect()
}

/// 1–3 distinct available items, quantity 1–2 each, required options filled in. Empty
/// when the menu has nothing available.
pub fn build_cart(menu: &MenuDoc, rng: &mut impl Rng) -> Vec<CartLine> {
    let mut items: Vec<&Item> = menu
        .categories
        .iter()
        .flat_map(|c| &c.items)
        .filter(|i| i.available)
        .collect();
    items.shuffle(rng);
    let n = rng.random_range(1..=3).min(items.len());
    items
        .into_iter()
        .take(n)
        .map(|i| CartLine {
            item_id: i.id.clone(),
            quantity: rng.random_range(1..=2),
            customizations: required_options(i),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MENU: &str = r#"{"restaurant":{"id":"7"},"categories":[
      {"name":"Pizza","items":[
        {"id":"1","name":"M","available":true,"price":1000,"customizations":[
          {"name":"Size","required":true,"min":1,"max":1,"options":[{"name":"Small","price_delta":-100},{"name":"Large","price_delta":300}]},
          {"name":"Extras","required":false,"min":0,"max":3,"options":[{"name":"Olives","price_delta":50}]}]},
        {"id":"2","name":"Gone","available":false,"price":900,"customizations":[]}]},
      {"name":"Drinks","items":[{"id":"3","name":"Cola","available":true,"price":300,"customizations":[]}]}]}"#;

    #[test]
    fn carts_use_available_items_and_required_options() {
        let menu: MenuDoc = serde_json::from_str(MENU).unwrap();
        let mut rng = rand::rng();
        for _ in 0..200 {
            let cart = build_cart(&menu, &mut rng);
            assert!((1..=2).contains(&cart.len()));
            for line in &cart {
                assert!((1..=2).contains(&line.quantity));
                match line.item_id.as_str() {
                    "1" => assert_eq!(line.customizations, vec!["Small".to_string()]),
                    "3" => assert!(line.customizations.is_empty()),
                    other => panic!("unavailable or unknown item {other}"),
                }
            }
        }
    }

    #[test]
    fn empty_menu_gives_empty_cart() {
        let menu = MenuDoc { categories: vec![] };
        assert!(build_cart(&menu, &mut rand::rng()).is_empty());
    }
}
