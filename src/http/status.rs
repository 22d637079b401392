//! Reason phrases and the short plain-text pages the proxy answers itself.

/// The reason phrase for the status codes the proxy produces itself.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// Writes a complete response with `body` of type `content_type` into `out`.
pub fn write_page(out: &mut Vec<u8>, status: u16, content_type: &str, body: &[u8], close: bool) {
    use std::io::Write;
    let _ = write!(
        out,
        "HTTP/1.1 {status} {r}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\nCache-Control: no-store\r\n",
        r = reason(status),
        len = body.len()
    );
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
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
