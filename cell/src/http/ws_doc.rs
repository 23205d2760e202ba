//! The WebSocket endpoints in the OpenAPI document (`crate::tracking::ws` serves them).
//! OpenAPI has no notion of a socket, so each is a `GET` whose `101` answer names the schema
//! of the frames the server then pushes (JSON text, in `x-websocket-messages`); a plain `GET`
//! without the upgrade headers is answered 426.

use serde_json::{Value, json};
use utoipa::openapi::OpenApi;

/// Adds both endpoints and their message schemas to `doc`.
pub fn add(doc: &mut OpenApi) {
    let id = json!({ "type": "string", "pattern": super::contract::ID_PATTERN });
    let endpoint = |summary: &str, messages: &str, who: &str| {
        json!({ "get": {
            "summary": summary,
            "description": format!(
                "A WebSocket. The token goes in the Authorization header, or as `?token=` on the \
                 upgrade request (browsers cannot set headers there). The server pushes \
                 `{messages}` frames and reads nothing but pings and the close; it closes with \
                 4001 when the token expires (reconnect with a fresh one)."
            ),
            "parameters": [
                { "name": "id", "in": "path", "required": true, "schema": id },
                { "name": "token", "in": "query", "required": false, "schema": { "type": "string" },
                  "description": "the bearer token, read on upgrade requests only" },
            ],
            "security": [{ "bearer": [] }],
            "responses": {
                "101": {
                    "description": format!("Switching Protocols: the socket is open; frames are `{messages}`"),
                    "x-websocket-messages": { "$ref": format!("#/components/schemas/{messages}") },
                },
                "403": error(who),
                "426": error("not a WebSocket upgrade request (a plain GET)"),
            },
        }})
    };
    let paths = json!({
        "/ws/orders/{id}/track": endpoint(
            "Track an order: its status, its driver's position and ETA",
            "TrackMessage",
            "not the order's customer or restaurant",
        ),
        "/ws/restaurants/{id}/orders": endpoint(
            "A restaurant tablet's live order feed",
            "RestaurantFeedMessage",
            "not this restaurant",
        ),
    });
    let paths: utoipa::openapi::Paths =
        serde_json::from_value(json!({ "paths": paths })["paths"].take())
            .expect("the WebSocket paths are a valid OpenAPI fragment");
    doc.paths.paths.extend(paths.paths);
    let components = doc.components.get_or_insert_with(Default::default);
    for (name, schema) in messages() {
        components.schemas.insert(
            name.to_owned(),
            serde_json::from_value(schema).expect("a valid schema"),
        );
    }
}

fn error(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorBody" } } },
    })
}

/// The frames as `crate::tracking` writes them.
fn messages() -> [(&'static str, Value); 2] {
    let object = |kind: &str, props: Value| {
        let mut p = props;
        p["type"] = json!({ "type": "string", "enum": [kind] });
        let required: Vec<&String> = p.as_object().expect("properties").keys().collect();
        json!({ "type": "object", "properties": p, "required": required })
    };
    let id = json!({ "type": "string" });
    let int = json!({ "type": "integer" });
    let num = json!({ "type": "number" });
    let status_update = object(
        "status_update",
        json!({ "order_id": id, "status": id, "event": id, "driver_id": { "type": ["string", "null"] }, "at": int }),
    );
    let track = json!({ "oneOf": [
        object("snapshot", json!({
            "order": { "$ref": "#/components/schemas/OrderResponse" },
            "driver_location": { "oneOf": [
                { "type": "object", "properties": { "lat": num, "lng": num, "heading": num, "ts": int } },
                { "type": "null" },
            ]},
            "eta_minutes": { "type": ["integer", "null"] },
        })),
        object("location_update", json!({
            "order_id": id, "lat": num, "lng": num, "heading": num, "ts": int, "eta_minutes": int,
        })),
        object("eta_update", json!({ "order_id": id, "eta_minutes": int, "eta_at": int })),
        status_update,
    ]});
    let feed = json!({ "oneOf": [
        object("snapshot", json!({
            "orders": { "type": "array", "items": { "$ref": "#/components/schemas/OrderResponse" } },
        })),
        object("order_update", json!({ "order_id": id, "status": id, "event": id, "at": int })),
    ]});
    [("TrackMessage", track), ("RestaurantFeedMessage", feed)]
}
