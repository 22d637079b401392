//! What affinity reads of a request: the bytes of its `HashKey` and the values of a cookie.
//!
//! Only entries that hash on something else than the client address, or set a sticky
//! cookie, call these (once per request, when the exchange starts); values are read as the
//! client sent them (not percent-decoded), without copying.

use super::headers::{eq_lowercase, trim};
use super::request::ProxyRequest;
use crate::config::HashKey;

/// The bytes `key` names in `request`, as up to three parts to hash as one string (`uri` is
/// `path`, `?`, `query`), or `None` when the request does not have them or they are empty
/// (then the hash method falls back to the client address). `HashKey source` is `None`
/// too: the client address is the key.
pub fn hash_key_parts<'r>(request: &'r ProxyRequest, key: &'r HashKey) -> Option<[&'r [u8]; 3]> {
    let value: &[u8] = match key {
        HashKey::Source => return None,
        HashKey::Path => request.path.as_bytes(),
        HashKey::Uri => {
            return Some(match &request.query {
                Some(q) => [request.path.as_bytes(), b"?", q.as_bytes()],
                None => [request.path.as_bytes(), b"", b""],
            })
        }
        HashKey::Header(name) => request
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)?,
        HashKey::Cookie(name) => cookies(request, name).next()?,
        HashKey::Query(name) => query_param(request.query.as_deref()?, name)?,
    };
    (!value.is_empty()).then_some([value, b"", b""])
}

/// The values of every cookie named `name` (exact case, RFC 6265 §5.4) in the request's
/// `Cookie` fields, in the order sent.
pub fn cookies<'r>(request: &'r ProxyRequest, name: &'r str) -> impl Iterator<Item = &'r [u8]> {
    request
        .headers
        .fields()
        .filter(|(_, n, _)| eq_lowercase(n, b"cookie"))
        .flat_map(|(_, _, v)| v.split(|&b| b == b';'))
        .filter_map(move |pair| {
            let pair = trim(pair);
            let eq = pair.iter().position(|&b| b == b'=')?;
            (trim(&pair[..eq]) == name.as_bytes()).then(|| {
                let v = trim(&pair[eq + 1..]);
                // A quoted value (RFC 6265's DQUOTE form) counts without its quotes.
                v.strip_prefix(b"\"")
                    .and_then(|v| v.strip_suffix(b"\""))
                    .unwrap_or(v)
            })
        })
}

/// The value of the first parameter `name` of `query` (`a=1&b=2`; a parameter without `=`
/// has an empty value), as sent.
pub fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q [u8]> {
    query.split('&').find_map(|param| {
        let (n, v) = param.split_once('=').unwrap_or((param, ""));
        (n == name).then_some(v.as_bytes())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path: &str, query: Option<&str>, fields: &[(&str, &str)]) -> ProxyRequest {
        let mut r = ProxyRequest::default();
        r.path = path.to_string();
        r.query = query.map(str::to_string);
        for (n, v) in fields {
            r.headers.push(n, v.as_bytes());
        }
        r
    }

    fn joined(parts: Option<[&[u8]; 3]>) -> Option<String> {
        parts.map(|p| String::from_utf8(p.concat()).unwrap())
    }

    #[test]
    fn each_key_reads_its_part() {
        let r = request(
            "/a/b",
            Some("x=1&user=ann&user=bob&flag"),
            &[
                ("x-user", "u1"),
                ("X-User", "u2"),
                ("Cookie", "a=1; sid=\"s1\""),
                ("cookie", "sid=s2"),
            ],
        );
        let key = |k: HashKey| joined(hash_key_parts(&r, &k));
        assert_eq!(key(HashKey::Source), None);
        assert_eq!(key(HashKey::Path).as_deref(), Some("/a/b"));
        assert_eq!(
            key(HashKey::Uri).as_deref(),
            Some("/a/b?x=1&user=ann&user=bob&flag")
        );
        assert_eq!(key(HashKey::Header("X-USER".into())).as_deref(), Some("u1"));
        assert_eq!(key(HashKey::Cookie("sid".into())).as_deref(), Some("s1"));
        assert_eq!(
            key(HashKey::Cookie("SID".into())),
            None,
            "cookie names keep case"
        );
        assert_eq!(key(HashKey::Query("user".into())).as_deref(), Some("ann"));
        assert_eq!(
            key(HashKey::Query("flag".into())),
            None,
            "empty counts as missing"
        );
        assert_eq!(key(HashKey::Query("use".into())), None);
        assert_eq!(key(HashKey::Header("X-Other".into())), None);
        let bare = request("/p", None, &[]);
        assert_eq!(
            joined(hash_key_parts(&bare, &HashKey::Uri)).as_deref(),
            Some("/p")
        );
        assert_eq!(hash_key_parts(&bare, &HashKey::Query("user".into())), None);
    }

    #[test]
    fn cookies_of_a_name_in_order() {
        let r = request(
            "/",
            None,
            &[("Cookie", "SRV=a;SRV=b ; other=c"), ("Cookie", " SRV = d ")],
        );
        let got: Vec<&[u8]> = cookies(&r, "SRV").collect();
        assert_eq!(got, vec![&b"a"[..], b"b", b"d"]);
        assert_eq!(cookies(&r, "none").count(), 0);
    }
}
