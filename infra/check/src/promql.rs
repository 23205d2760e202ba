//! The metric names a PromQL expression selects. Not a full parser: a lexer that skips strings,
//! label matchers, ranges, numbers, Grafana variables, function names, keywords and label
//! lists (`by (...)`), so that the identifiers left are exactly the selected metric names.

/// Aggregation operators; they may be followed by `by (...)` before their `(`.
const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];
/// Keywords followed by a parenthesised label list.
const LABEL_LIST_KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
const OTHER_KEYWORDS: &[&str] = &[
    "and", "or", "unless", "offset", "bool", "atan2", "inf", "nan",
];

/// Metric names selected by `expr`, in order of appearance, or a description of why the
/// expression does not lex (unbalanced brackets, unterminated string).
pub fn metric_names(expr: &str) -> Result<Vec<String>, String> {
    let b = expr.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let mut depth = 0i32;
    while i < b.len() {
        let c = b[i];
        match c {
            b'"' | b'\'' | b'`' => i = skip_string(b, i)?,
            b'{' => i = skip_until(b, i, b'}')?,
            b'[' => i = skip_until(b, i, b']')?,
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' => {
                depth += 1;
                i += 1;
            }
            b')' => {
                depth -= 1;
                if depth < 0 {
                    return Err("unbalanced ')'".into());
                }
                i += 1;
            }
            b'$' => {
                i += 1;
                if i < b.len() && b[i] == b'{' {
                    i = skip_until(b, i, b'}')?;
                } else {
                    while i < b.len() && is_ident(b[i]) {
                        i += 1;
                    }
                }
            }
            b'0'..=b'9' | b'.' => {
                // Numbers, durations (5m), exponents (1e-9).
                while i < b.len() && (is_ident(b[i]) || b[i] == b'.') {
                    if (b[i] == b'e' || b[i] == b'E') && i + 1 < b.len() && b[i + 1] == b'-' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            c if is_ident_start(c) => {
                let start = i;
                while i < b.len() && (is_ident(b[i]) || b[i] == b':') {
                    i += 1;
                }
                let word = &expr[start..i];
                let next = next_non_space(b, i);
                if LABEL_LIST_KEYWORDS.contains(&word) {
                    if next.map(|j| b[j]) == Some(b'(') {
                        i = skip_until(b, next.unwrap_or(i), b')')?;
                    }
                } else if AGGREGATIONS.contains(&word)
                    || OTHER_KEYWORDS.contains(&word)
                    || next.map(|j| b[j]) == Some(b'(')
                {
                    // A keyword or a function name.
                } else {
                    out.push(word.to_owned());
                }
            }
            _ => i += 1,
        }
    }
    if depth != 0 {
        return Err("unbalanced '('".into());
    }
    Ok(out)
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn next_non_space(b: &[u8], mut i: usize) -> Option<usize> {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    (i < b.len()).then_some(i)
}

/// Index after the string starting at `i` (its quote character).
fn skip_string(b: &[u8], i: usize) -> Result<usize, String> {
    let q = b[i];
    let mut j = i + 1;
    while j < b.len() {
        if b[j] == b'\\' && q != b'`' {
            j += 2;
            continue;
        }
        if b[j] == q {
            return Ok(j + 1);
        }
        j += 1;
    }
    Err(format!("unterminated string at byte {i}"))
}

/// Index after the `close` matching the opener at `i`, skipping strings inside.
fn skip_until(b: &[u8], i: usize, close: u8) -> Result<usize, String> {
    let open = b[i];
    let mut level = 0;
    let mut j = i;
    while j < b.len() {
        match b[j] {
            b'"' | b'\'' | b'`' => {
                j = skip_string(b, j)?;
                continue;
            }
            c if c == open => level += 1,
            c if c == close => {
                level -= 1;
                if level == 0 {
                    return Ok(j + 1);
                }
            }
            _ => {}
        }
        j += 1;
    }
    Err(format!("unclosed '{}' at byte {i}", open as char))
}

#[cfg(test)]
mod tests {
    use super::metric_names;

    fn names(e: &str) -> Vec<String> {
        metric_names(e).unwrap()
    }

    #[test]
    fn selectors_functions_and_aggregations() {
        assert_eq!(
            names(
                r#"sum by (cell, status) (rate(router_requests_total{status=~"5..", cell="$cell"}[$__rate_interval]))"#
            ),
            ["router_requests_total"]
        );
        assert_eq!(
            names("histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))"),
            ["x_bucket"]
        );
        assert_eq!(
            names(
                "sum(rate(a_sum[1m])) / sum(rate(a_count[1m])) - on (cell) group_left (x) b offset 5m"
            ),
            ["a_sum", "a_count", "b"]
        );
        assert_eq!(
            names("max without (instance) (g) > 1e-9 and up == 0"),
            ["g", "up"]
        );
        assert_eq!(
            names("job:cell_pings:rate1m > bool 3"),
            ["job:cell_pings:rate1m"]
        );
        assert_eq!(
            names(r#"label_replace(m, "dst", "$1", "src", "(.*)")"#),
            ["m"]
        );
        assert_eq!(
            names("clamp_min(sum(x), 1e-9) # a comment naming y\n"),
            ["x"]
        );
    }

    #[test]
    fn broken_expressions_are_errors() {
        assert!(metric_names("sum(rate(x[5m])").is_err());
        assert!(metric_names("x{a=\"b}").is_err());
        assert!(metric_names("rate(x[5m)").is_err());
        assert!(metric_names("x)").is_err());
    }
}
