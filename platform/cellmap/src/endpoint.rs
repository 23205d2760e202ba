//! A cell's HTTP endpoint as the map stores it: `host:port` (plain HTTP, how maps written
//! before TLS spell it, so they keep loading) or `https://host:port` (TLS, the certificate
//! verified against the router's upstream CA). `http://host:port` is accepted as plain too.

/// A parsed [`crate::CellInfo::http`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint<'a> {
    /// Whether the cell serves HTTPS.
    pub tls: bool,
    /// `host:port`, without scheme.
    pub authority: &'a str,
}

impl<'a> Endpoint<'a> {
    /// Splits off the scheme; `None` for another scheme, a path or an empty authority.
    pub fn parse(http: &'a str) -> Option<Self> {
        let (tls, authority) = if let Some(rest) = http.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = http.strip_prefix("http://") {
            (false, rest)
        } else {
            (false, http)
        };
        let authority = authority.trim_end_matches('/');
        let ok = !authority.trim().is_empty() && !authority.contains(['/', '?', '#', ' ']);
        ok.then_some(Self { tls, authority })
    }

    /// `https://host:port` or `http://host:port`, for building request URLs.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.authority)
    }

    /// The host the certificate must name (brackets of an IPv6 literal removed).
    pub fn host(&self) -> &'a str {
        let host = match self.authority.rsplit_once(':') {
            // An IPv6 literal without a port has colons but ends with `]`.
            Some((h, port)) if !port.contains(']') => h,
            _ => self.authority,
        };
        host.trim_start_matches('[').trim_end_matches(']')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_plain_and_https_endpoints_parse() {
        let plain = Endpoint::parse("127.0.0.1:8081").unwrap();
        assert_eq!(
            (plain.tls, plain.base_url()),
            (false, "http://127.0.0.1:8081".into())
        );
        let tls = Endpoint::parse("https://cell-1.internal:8443/").unwrap();
        assert_eq!(
            (tls.tls, tls.authority, tls.host()),
            (true, "cell-1.internal:8443", "cell-1.internal")
        );
        assert_eq!(Endpoint::parse("https://[::1]:8443").unwrap().host(), "::1");
        assert!(!Endpoint::parse("http://c:80").unwrap().tls);
        for bad in ["", "https://", "ftp://c:1", "c:1/path"] {
            assert_eq!(Endpoint::parse(bad), None, "{bad}");
        }
    }
}
