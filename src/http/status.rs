//! Reason phrases and the short plain-text pages the proxy answers itself.

/// The reason phrase for the status codes the proxy produces itself.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// The media types of the pages the proxy answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    /// `text/plain` (error pages).
    Text,
    /// The statistics page for people.
    Html,
    /// The statistics as JSON.
    Json,
    /// The statistics as Prometheus text exposition format 0.0.4.
    Prometheus,
}

impl ContentType {
    /// The whole header line, CRLF included, NUL-terminated for hosts that keep C strings
    /// (Monkey keeps the pointer until it has sent the head).
    pub fn header_line(self) -> &'static std::ffi::CStr {
        match self {
            ContentType::Text => c"Content-Type: text/plain\r\n",
            ContentType::Html => c"Content-Type: text/html; charset=utf-8\r\n",
            ContentType::Json => c"Content-Type: application/json\r\n",
            ContentType::Prometheus => {
                c"Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            }
        }
    }

    /// The field value (`text/html; charset=utf-8`).
    pub fn value(self) -> &'static str {
        let line = self.header_line().to_str().unwrap_or_default();
        line.strip_prefix("Content-Type: ")
            .and_then(|v| v.strip_suffix("\r\n"))
            .unwrap_or_default()
    }
}

/// A response the proxy makes itself, for the host to send: the statistics page, and the
/// errors that need no backend (400, 403, 404, 503 for lack of resources).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPage {
    /// Status code.
    pub status: u16,
    /// What the body is.
    pub content_type: ContentType,
    /// The body.
    pub body: std::borrow::Cow<'static, [u8]>,
    /// Close the client connection after it.
    pub close: bool,
    /// `Retry-After` seconds, if any.
    pub retry_after: Option<u64>,
    /// `Cache-Control: no-store` (pages that change with every request).
    pub no_store: bool,
}

impl LocalPage {
    /// A short plain-text error page: the reason phrase as the body.
    pub fn error(status: u16, close: bool, retry_after: Option<u64>) -> LocalPage {
        let body = match status {
            400 => &b"Bad Request\n"[..],
            403 => b"Forbidden\n",
            404 => b"Not Found\n",
            413 => b"Payload Too Large\n",
            500 => b"Internal Server Error\n",
            503 => b"Service Unavailable\n",
            _ => b"Error\n",
        };
        LocalPage {
            status,
            content_type: ContentType::Text,
            body: std::borrow::Cow::Borrowed(body),
            close,
            retry_after,
            no_store: false,
        }
    }

    /// A JSON page (pretty-printed, fields in declaration order, never cached): the admin
    /// endpoint's answers.
    pub fn json<T: serde::Serialize + ?Sized>(status: u16, body: &T) -> LocalPage {
        let mut text = serde_json::to_vec_pretty(body).unwrap_or_default();
        text.push(b'\n');
        LocalPage {
            status,
            content_type: ContentType::Json,
            body: std::borrow::Cow::Owned(text),
            close: false,
            retry_after: None,
            no_store: true,
        }
    }
}

/// Writes `page` as a complete response into `out`, with a `Date` as every origin server's
/// response has (RFC 9110 §6.6.1; Monkey adds its own to the pages it sends for the plugin).
/// `head_request`: a `HEAD`, so the body is left out (its length still stated).
pub fn write_page(out: &mut Vec<u8>, page: &LocalPage, head_request: bool) {
    use std::io::Write;
    let _ = write!(
        out,
        "HTTP/1.1 {status} {r}\r\nDate: {date}\r\n{content_type}Content-Length: {len}\r\n",
        status = page.status,
        r = reason(page.status),
        date = super::date::imf_fixdate(std::time::SystemTime::now()),
        content_type = page.content_type.header_line().to_str().unwrap_or_default(),
        len = page.body.len()
    );
    if page.no_store {
        out.extend_from_slice(b"Cache-Control: no-store\r\n");
    }
    if let Some(secs) = page.retry_after {
        let _ = write!(out, "Retry-After: {secs}\r\n");
    }
    if page.close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_request {
        out.extend_from_slice(&page.body);
    }
}

/// Writes a complete short plain-text response (`status`, a one-line body, the `Date`)
/// into `out`. `close` adds `Connection: close`; `retry_after` adds a `Retry-After` header
/// (seconds). Error path only: the date is formatted each time.
pub fn write_error_page(out: &mut Vec<u8>, status: u16, close: bool, retry_after: Option<u64>) {
    use std::io::Write;
    let body_len = reason(status).len() + 1;
    let _ = write!(
        out,
        "HTTP/1.1 {status} {r}\r\nDate: {date}\r\nContent-Type: text/plain\r\n\
         Content-Length: {body_len}\r\n",
        r = reason(status),
        date = super::date::imf_fixdate(std::time::SystemTime::now()),
    );
    if let Some(secs) = retry_after {
        let _ = write!(out, "Retry-After: {secs}\r\n");
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    let _ = write!(out, "\r\n{}\n", reason(status));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_come_from_one_table() {
        assert_eq!(ContentType::Html.value(), "text/html; charset=utf-8");
        assert_eq!(ContentType::Json.value(), "application/json");
        assert!(ContentType::Prometheus
            .value()
            .starts_with("text/plain; version=0.0.4"));
        assert_eq!(
            ContentType::Text.header_line().to_bytes(),
            b"Content-Type: text/plain\r\n"
        );
    }

    #[test]
    fn local_pages_are_well_framed() {
        let mut out = Vec::new();
        let mut page = LocalPage::error(503, true, Some(1));
        page.no_store = true;
        write_page(&mut out, &page, false);
        let text = String::from_utf8(out).unwrap();
        let (first, rest) = text.split_once("\r\nDate: ").expect("a Date");
        assert_eq!(first, "HTTP/1.1 503 Service Unavailable");
        let (date, rest) = rest.split_once("\r\n").unwrap();
        assert!(date.ends_with(" GMT"), "{date}");
        assert_eq!(
            rest,
            "Content-Type: text/plain\r\nContent-Length: 20\r\nCache-Control: no-store\r\n\
             Retry-After: 1\r\nConnection: close\r\n\r\nService Unavailable\n"
        );
        let mut head = Vec::new();
        write_page(&mut head, &LocalPage::error(404, false, None), true);
        assert!(head.ends_with(b"Content-Length: 10\r\n\r\n"), "{head:?}");
    }

    #[test]
    fn error_page_is_well_framed() {
        let mut out = Vec::new();
        write_error_page(&mut out, 502, true, None);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 502 Bad Gateway\r\n"));
        assert!(text.contains("Content-Length: 12\r\n"));
        assert!(
            text.contains(" GMT\r\n") && text.contains("\r\nDate: "),
            "{text}"
        );
        assert!(text.ends_with("\r\n\r\nBad Gateway\n"));
    }
}
