//! What the OpenAPI document says about every operation alike, so no handler can forget it:
//! the error answers that come from the extractors and the router rather than from the
//! handler (401, 400, 413; 404 from the router; 429 from the router or the cell's per-user
//! limit), and the format of every id in a
//! path.
//!
//! Handlers still list their own answers (403, 404, 409, 422, ...) in `#[utoipa::path]`;
//! Schemathesis (`tests/contract/schemathesis.sh`) checks that the two together are exact.

use super::error::ApiError;
use std::str::FromStr;
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};

/// Every id on the wire: a decimal string. Ours are below 2^63, so 19 digits at most.
pub const ID_PATTERN: &str = "^[0-9]{1,19}$";
const ID_MAX_DIGITS: usize = 19;

/// Parses an id as the document describes it ([`ID_PATTERN`]); anything else is a 400 naming
/// `what`.
pub fn parse_id<T: FromStr>(what: &str, s: &str) -> Result<T, ApiError> {
    let bad = || ApiError::bad_request("request.invalid_id", format!("{s:?} is not {what}"));
    if s.is_empty() || s.len() > ID_MAX_DIGITS || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    s.parse().map_err(|_| bad())
}

/// The [`utoipa::Modify`] that adds the shared answers and id formats.
pub struct SharedAnswers;

impl utoipa::Modify for SharedAnswers {
    fn modify(&self, openapi: &mut OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let public = !path.starts_with("/api/v1/admin/");
            for op in operations(item) {
                add_shared_answers(op, public);
                constrain_path_ids(op);
            }
        }
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .flatten()
}

fn error_answer(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}

fn add_shared_answers(op: &mut Operation, public: bool) {
    let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let has_body = op.request_body.is_some();
    let mut shared = Vec::new();
    if op.security.is_some() {
        shared.push(("401", "no bearer token, or a bad or expired one"));
    }
    if has_params || has_body {
        shared.push((
            "400",
            "malformed input: a parameter or the body breaks its schema",
        ));
    }
    if has_body {
        shared.push(("413", "the body is larger than the limit"));
    }
    if public {
        shared.push((
            "404",
            "not found; through the router also: no cell serves the place, region or cell the request names",
        ));
    }
    // The cell's per-user limit applies to every authenticated call (admins are exempt, but
    // an admin path still checks a non-admin token before refusing it).
    if public || op.security.is_some() {
        shared.push((
            "429",
            "over a rate limit (the router's per client and per token ones, the cell's per user one; see Retry-After)",
        ));
    }
    for (status, description) in shared {
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| error_answer(description));
    }
}

/// Path parameters named `id` or `*_id` are ids.
fn constrain_path_ids(op: &mut Operation) {
    for p in op.parameters.iter_mut().flatten() {
        let RefOr::T(p) = p else { continue };
        if p.parameter_in == ParameterIn::Path && (p.name == "id" || p.name.ends_with("_id")) {
            p.schema = Some(RefOr::T(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(ID_PATTERN))
                    .into(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::OrderId;

    #[test]
    fn ids_parse_exactly_as_the_pattern_says() {
        assert_eq!(parse_id::<OrderId>("an order id", "0").unwrap(), OrderId(0));
        let max = "9".repeat(19);
        assert!(parse_id::<OrderId>("an order id", &max).is_ok());
        // 20 digits fit a u64 but break the pattern, so the server refuses them too.
        for bad in ["", "10000000000000000000", "+1", "-1", " 1", "1a", "١"] {
            assert!(parse_id::<OrderId>("an order id", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn whole_numbers_are_integers_as_json_schema_counts_them() {
        let line = |q: &str| {
            serde_json::from_str::<super::super::dto::CartLineDto>(&format!(
                r#"{{"item_id":"1","quantity":{q}}}"#
            ))
        };
        assert_eq!(line("15.0").unwrap().quantity, 15);
        assert_eq!(line("15").unwrap().quantity, 15);
        for bad in ["15.5", "-1", "4294967296", "\"15\""] {
            assert!(line(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_document_states_the_servers_own_limits() {
        let doc = serde_json::to_value(super::super::openapi()).unwrap();
        let param = |path: &str, name: &str| {
            doc["paths"][path]["get"]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .unwrap()["schema"]
                .clone()
        };
        let radius = param("/api/v1/restaurants", "radius");
        assert_eq!(radius["pattern"], catalog::RADIUS_PATTERN);
        assert_eq!(
            param("/api/v1/restaurants", "page")["maximum"],
            catalog::MAX_PAGE
        );
        assert_eq!(
            param("/api/v1/restaurants", "cuisine")["maxLength"],
            catalog::MAX_CUISINE_CHARS
        );
        let statuses = param("/api/v1/restaurants/{id}/orders", "status");
        let mut want = vec!["active".to_string()];
        want.extend(
            domain::OrderStatus::ALL
                .iter()
                .map(|s| s.as_str().to_string()),
        );
        assert_eq!(statuses["enum"], serde_json::json!(want));
    }

    #[test]
    fn every_operation_lists_the_shared_answers_and_id_formats() {
        let doc = serde_json::to_value(super::super::openapi()).unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                assert!(responses.contains_key("401"), "{method} {path}: 401");
                if op.get("requestBody").is_some() {
                    assert!(responses.contains_key("413"), "{method} {path}: 413");
                }
                for p in op["parameters"].as_array().into_iter().flatten() {
                    let name = p["name"].as_str().unwrap();
                    if p["in"] == "path" && (name == "id" || name.ends_with("_id")) {
                        assert_eq!(p["schema"]["pattern"], ID_PATTERN, "{method} {path} {name}");
                    }
                }
            }
        }
    }
}
