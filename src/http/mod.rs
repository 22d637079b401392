//! HTTP/1.1 message handling for the proxy: the request sent upstream is rebuilt from parsed
//! fields ([`request`]), the backend's response head is parsed strictly and re-written for the
//! client ([`response`]), and the response body is delimited as RFC 9112 §6 says
//! ([`framing`], [`chunked`]); an entry's header rules add their lines to both ([`rules`]).

pub mod affinity;
pub mod chunked;
pub mod date;
pub mod framing;
pub mod headers;
pub mod intake;
pub mod request;
pub mod response;
pub mod rules;
pub mod status;
