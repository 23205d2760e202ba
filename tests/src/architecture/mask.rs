//! Blanks out comments, string literals and character literals in Rust source, keeping every
//! newline and every other byte where it was, so that text searches over code see neither a
//! `// Instant::now()` in a comment nor a `"{"` in a string, and line numbers stay right.

/// `src` with comments and the contents of string and char literals replaced by spaces.
pub(crate) fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = b.to_vec();
    let mut i = 0;
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    while i < b.len() {
        let prev_ident = i > 0 && is_ident(b[i - 1]);
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                let end = find(b, i, b"\n").unwrap_or(b.len());
                blank(&mut out, i, end);
                i = end;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = block_comment_end(b, i);
                blank(&mut out, i, end);
                i = end;
            }
            b'r' | b'b' | b'c' if !prev_ident && raw_string_start(b, i).is_some() => {
                let (open, hashes) = raw_string_start(b, i).expect("checked");
                let mut closing = vec![b'"'];
                closing.extend(std::iter::repeat_n(b'#', hashes));
                let end = find(b, open + 1, &closing).map_or(b.len(), |e| e + closing.len());
                blank(
                    &mut out,
                    open + 1,
                    end.saturating_sub(closing.len()).max(open + 1),
                );
                i = end;
            }
            b'"' => {
                let end = string_end(b, i + 1);
                blank(&mut out, i + 1, end.saturating_sub(1).max(i + 1));
                i = end;
            }
            b'\'' => {
                // A char literal ('x', '\n', '\u{1F600}') or else a lifetime or label ('a).
                if b.get(i + 1) == Some(&b'\\') {
                    let end = find(b, i + 3, b"'").map_or(b.len(), |e| e + 1);
                    blank(&mut out, i + 1, end - 1);
                    i = end;
                } else if let Some(len) = char_len(&b[i + 1..])
                    && b.get(i + 1 + len) == Some(&b'\'')
                {
                    blank(&mut out, i + 1, i + 1 + len);
                    i += len + 2;
                } else {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    String::from_utf8(out).expect("only ASCII bytes were written over whole characters")
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// The end (exclusive) of the block comment opening at `i`; block comments nest.
fn block_comment_end(b: &[u8], mut i: usize) -> usize {
    let mut depth = 0;
    while i < b.len() {
        if b[i..].starts_with(b"/*") {
            depth += 1;
            i += 2;
        } else if b[i..].starts_with(b"*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// The end (exclusive, after the closing quote) of a string whose contents start at `i`.
fn string_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// For `r"`, `r#"`, `br"`, `cr#"` at `i`: the index of the opening quote and the number of `#`.
fn raw_string_start(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    if matches!(b[j], b'b' | b'c') {
        j += 1;
    }
    if b.get(j) != Some(&b'r') {
        return None;
    }
    j += 1;
    let hashes = b[j..].iter().take_while(|&&c| c == b'#').count();
    (b.get(j + hashes) == Some(&b'"')).then_some((j + hashes, hashes))
}

/// The byte length of the UTF-8 character starting `b`, if `b` starts with one.
fn char_len(b: &[u8]) -> Option<usize> {
    let first = *b.first()?;
    let len = match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => return None,
    };
    (b.len() >= len && first != b'\'' && first != b'\n').then_some(len)
}

#[cfg(test)]
mod tests {
    use super::code_only;

    #[test]
    fn comments_strings_and_chars_are_blanked_lines_kept() {
        let src = "let a = \"Instant::now()\"; // Instant::now()\n/* x\n Instant::now() */ let c = '{'; let q = '\\''; let s = \"\\\"}\";\nlet r = r#\"}\"#; fn f<'a>(x: &'a str) {}\n";
        let code = code_only(src);
        assert_eq!(code.len(), src.len());
        assert_eq!(code.lines().count(), src.lines().count());
        assert!(!code.contains("Instant"), "{code}");
        // The only braces left are the function body's.
        assert_eq!(code.matches('{').count(), 1, "{code}");
        assert_eq!(code.matches('}').count(), 1, "{code}");
        assert!(code.contains("fn f<'a>(x: &'a str) {}"), "{code}");
    }
}
