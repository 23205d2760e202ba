//! The role table's rows for the staff endpoints (`/api/v1/admin/...`): profiles, ping
//! accounting, status, the payment sandbox and drift, regions, fraud flags, location history
//! and the cell map.

use super::*;

pub(super) fn rows() -> Vec<Row> {
    vec![
        ("put", "/api/v1/admin/profiles/{kind}/{id}", |c| {
            c.check(
                "put",
                "/api/v1/admin/profiles/driver/4001",
                Some(&json!({ "display_name": "Ana Koch" })),
                &only(Admin, 200),
            );
        }),
        ("get", "/api/v1/admin/profiles/{kind}/{id}", |c| {
            // Nobody wrote this profile: the admin gets past authorization to a 404.
            c.check(
                "get",
                "/api/v1/admin/profiles/customer/999999",
                None,
                &only(Admin, 404),
            );
        }),
        ("get", "/api/v1/admin/pings", |c| {
            c.check("get", "/api/v1/admin/pings", None, &only(Admin, 200));
        }),
        ("get", "/api/v1/admin/status", |c| {
            c.check("get", "/api/v1/admin/status", None, &only(Admin, 200));
        }),
        ("get", "/api/v1/admin/payments/sandbox/faults", |c| {
            c.check(
                "get",
                "/api/v1/admin/payments/sandbox/faults",
                None,
                &only(Admin, 200),
            );
        }),
        // An empty patch changes nothing: the shared cell's provider stays healthy.
        ("put", "/api/v1/admin/payments/sandbox/faults", |c| {
            c.check(
                "put",
                "/api/v1/admin/payments/sandbox/faults",
                Some(&json!({})),
                &only(Admin, 200),
            );
        }),
        ("get", "/api/v1/admin/regions", |c| {
            c.check("get", "/api/v1/admin/regions", None, &only(Admin, 200));
        }),
        ("get", "/api/v1/admin/regions/{region}/export", |c| {
            c.check(
                "get",
                "/api/v1/admin/regions/851f1d4bfffffff/export?limit=1",
                None,
                &only(Admin, 200),
            );
        }),
        ("post", "/api/v1/admin/regions/{region}/import", |c| {
            c.check(
                "post",
                "/api/v1/admin/regions/851f1d4bfffffff/import",
                Some(&json!({ "restaurants": [] })),
                &only(Admin, 200),
            );
        }),
        ("get", "/api/v1/admin/payments/drift", |c| {
            c.check(
                "get",
                "/api/v1/admin/payments/drift",
                None,
                &only(Admin, 200),
            );
        }),
        // Fraud flags: admins and support staff.
        ("get", "/api/v1/admin/flags", |c| {
            let mut cases = only(Admin, 200);
            cases.retain(|&(p, _)| p != Support);
            cases.push((Support, 200));
            c.check("get", "/api/v1/admin/flags", None, &cases);
        }),
        ("post", "/api/v1/admin/flags/{flag}/review", |c| {
            let mut cases = only(Admin, 404);
            cases.retain(|&(p, _)| p != Support);
            cases.push((Support, 404));
            let body = json!({ "decision": "clear" });
            c.check(
                "post",
                "/api/v1/admin/flags/1-nothing/review",
                Some(&body),
                &cases,
            );
        }),
        // Location history: admins and support staff, with a reason; nobody recorded a path
        // for this delivery, so staff get past authorization (and the audit) to a 404.
        ("get", "/api/v1/admin/deliveries/{id}/path", |c| {
            let mut cases = only(Admin, 404);
            cases.retain(|&(p, _)| p != Support);
            cases.push((Support, 404));
            c.check(
                "get",
                "/api/v1/admin/deliveries/999999/path?reason=T-1",
                None,
                &cases,
            );
        }),
        ("post", "/api/v1/admin/deliveries/{id}/hold", |c| {
            let mut cases = only(Admin, 404);
            cases.retain(|&(p, _)| p != Support);
            cases.push((Support, 404));
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970")
                .as_millis() as i64;
            let body = json!({ "reason": "dispute T-1", "expires_at": now_ms + 86_400_000 });
            c.check(
                "post",
                "/api/v1/admin/deliveries/999999/hold",
                Some(&body),
                &cases,
            );
        }),
        // The audit chain's check: admins only (support staff get 403).
        ("get", "/api/v1/admin/audit/verify", |c| {
            c.check("get", "/api/v1/admin/audit/verify", None, &only(Admin, 200));
        }),
        ("put", "/api/v1/admin/cellmap", |c| {
            c.check(
                "put",
                "/api/v1/admin/cellmap",
                Some(&json!({ "version": 0, "cells": {}, "regions": {} })),
                &only(Admin, 200),
            );
        }),
    ]
}
