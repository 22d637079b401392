//! Header rules: `RequestHeader` (to the backend) and `ResponseHeader` (to the client) lines,
//! `set|add|remove NAME [VALUE]`, read, checked and compiled once here, so that the request
//! path only writes what the compiled form says.
//!
//! A rule may not touch what the proxy owns: framing and hop-by-hop fields on either side,
//! the forwarding fields and `Expect` on the request side (the Traefik CVE-2024-45410 class:
//! a client or a rule removing `X-Forwarded-For`), and a request's `Host` may only be `set`
//! (to one authority). Values are field values (RFC 9110 §5.5) with variables: `$client_addr`,
//! `$entry`, `$server`, `$request_id` (`${name}` when letters follow), `$$` for a `$`.

/// What a rule does to the fields of its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderAction {
    /// Replaces every field of the name (or adds one if there was none).
    Set,
    /// Appends one more field of the name.
    Add,
    /// Removes every field of the name.
    Remove,
}

impl HeaderAction {
    /// The word the configuration uses.
    pub fn word(self) -> &'static str {
        match self {
            HeaderAction::Set => "set",
            HeaderAction::Add => "add",
            HeaderAction::Remove => "remove",
        }
    }
}

/// A value the proxy inserts into a rule's value when it writes the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variable {
    /// `$client_addr`: the IP address of the client's connection as the proxy saw it (the
    /// peer, not an address a forwarding header names).
    ClientAddr,
    /// `$entry`: the entry's `Name`.
    Entry,
    /// `$server`: the `host:port` of the server the request goes to (per try) or the
    /// response came from.
    Server,
    /// `$request_id`: 32 hex digits, unique per request, the same in the request's and the
    /// response's rules.
    RequestId,
}

/// The variables, with their names.
pub const VARIABLES: &[(&str, Variable)] = &[
    ("client_addr", Variable::ClientAddr),
    ("entry", Variable::Entry),
    ("server", Variable::Server),
    ("request_id", Variable::RequestId),
];

impl Variable {
    /// Its name without the `$`.
    pub fn name(self) -> &'static str {
        VARIABLES
            .iter()
            .find(|(_, v)| *v == self)
            .map_or("", |(n, _)| n)
    }
}

/// A piece of a rule's value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ValuePart {
    /// Text written as it is (`$$` already made `$`); never empty, never two in a row.
    Text(String),
    /// A variable, expanded per request.
    Var(Variable),
}

/// One `RequestHeader` or `ResponseHeader` line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HeaderRule {
    /// What it does.
    pub action: HeaderAction,
    /// The field name as written (a token; compared without regard to case).
    pub name: String,
    /// The value (empty for `remove`).
    pub value: Vec<ValuePart>,
}

/// The rules of one direction of an entry, in file order, with their compiled form: which
/// received fields are not passed on, and which lines are appended. Empty for most entries,
/// and then the writers skip every step of it with one check.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeaderRules {
    rules: Vec<HeaderRule>,
    /// Lowercase names whose received fields are dropped (named by a `set` or `remove`).
    dropped: Vec<String>,
    /// Indices into `rules` of the fields appended, in order (the effect of running the
    /// rules one after the other: a later `set` or `remove` takes back earlier lines).
    lines: Vec<usize>,
    /// The appended line named `Host`, if any (a request's `set Host`).
    host: Option<usize>,
    uses_server: bool,
    uses_request_id: bool,
}

impl HeaderRules {
    /// The rules `rules`, in order, compiled.
    pub fn new(rules: Vec<HeaderRule>) -> HeaderRules {
        let mut dropped: Vec<String> = Vec::new();
        let mut lines: Vec<usize> = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            let lower = rule.name.to_ascii_lowercase();
            if rule.action != HeaderAction::Add {
                lines.retain(|&j| !rules[j].name.eq_ignore_ascii_case(&rule.name));
                if !dropped.contains(&lower) {
                    dropped.push(lower);
                }
            }
            if rule.action != HeaderAction::Remove {
                lines.push(i);
            }
        }
        let host = lines
            .iter()
            .copied()
            .find(|&i| rules[i].name.eq_ignore_ascii_case("host"));
        let uses = |var: Variable| {
            lines
                .iter()
                .any(|&i| rules[i].value.contains(&ValuePart::Var(var)))
        };
        HeaderRules {
            uses_server: uses(Variable::Server),
            uses_request_id: uses(Variable::RequestId),
            dropped,
            lines,
            host,
            rules,
        }
    }

    /// The rules as written.
    pub fn rules(&self) -> &[HeaderRule] {
        &self.rules
    }

    /// Whether there is no rule (the writers' fast path).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether a received field named `name` is dropped (a `set` or `remove` names it).
    pub fn drops(&self, name: &[u8]) -> bool {
        self.dropped
            .iter()
            .any(|d| name.eq_ignore_ascii_case(d.as_bytes()))
    }

    /// Whether some received field may be dropped at all.
    pub fn drops_any(&self) -> bool {
        !self.dropped.is_empty()
    }

    /// The fields appended, in order.
    pub fn lines(&self) -> impl Iterator<Item = &HeaderRule> + '_ {
        self.lines.iter().map(move |&i| &self.rules[i])
    }

    /// [`HeaderRules::lines`] but `Host` (a request writes it apart: [`HeaderRules::host`]).
    pub fn lines_but_host(&self) -> impl Iterator<Item = &HeaderRule> + '_ {
        self.lines
            .iter()
            .filter(move |&&i| Some(i) != self.host)
            .map(move |&i| &self.rules[i])
    }

    /// The `set Host` rule, if one is in effect: a request writes its one `Host` line where
    /// the proxy writes it.
    pub fn host(&self) -> Option<&HeaderRule> {
        self.host.map(|i| &self.rules[i])
    }

    /// Whether an appended value names `$server` (the request is then written per try).
    pub fn uses_server(&self) -> bool {
        self.uses_server
    }

    /// Whether an appended value names `$request_id` (the exchange then takes an id).
    pub fn uses_request_id(&self) -> bool {
        self.uses_request_id
    }
}

/// Which way the rules of a key go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `RequestHeader`: the request the backend gets.
    Request,
    /// `ResponseHeader`: the response the client gets.
    Response,
}

/// Hop-by-hop and framing fields (RFC 9110 §7.6.1, RFC 9112 §6): the proxy writes them
/// itself for each connection, on both sides.
const FRAMING: &[&str] = &[
    "Connection",
    "Keep-Alive",
    "Proxy-Connection",
    "TE",
    "Trailer",
    "Transfer-Encoding",
    "Upgrade",
    "Content-Length",
];

/// The forwarding fields the proxy writes on every request (`Forwarded` with
/// `ForwardedHeader on`, and replaced or dropped otherwise).
const FORWARDING: &[&str] = &[
    "X-Forwarded-For",
    "X-Forwarded-Proto",
    "X-Forwarded-Host",
    "Forwarded",
];

/// The names a rule of `direction` may not touch, as the help lists them.
pub fn protected(direction: Direction) -> Vec<&'static str> {
    let mut names = FRAMING.to_vec();
    if direction == Direction::Request {
        names.extend_from_slice(FORWARDING);
        names.push("Expect");
    }
    names
}

/// Reads one rule line (`set NAME VALUE`, `add NAME VALUE`, `remove NAME`) of `key`.
pub fn rule(key: &str, direction: Direction, text: &str) -> Result<HeaderRule, String> {
    let usage = format!("{key} takes `set NAME VALUE`, `add NAME VALUE` or `remove NAME`");
    let (word, rest) = split_word(text);
    let action = match word.to_ascii_lowercase().as_str() {
        "set" => HeaderAction::Set,
        "add" => HeaderAction::Add,
        "remove" => HeaderAction::Remove,
        _ => return Err(format!("{usage}, not `{text}`")),
    };
    let (name, value) = split_word(rest);
    if name.is_empty() {
        return Err(format!("{usage}: the field name is missing"));
    }
    if !name.bytes().all(is_token_byte) {
        return Err(format!(
            "`{name}` is not a header name (letters, digits and !#$%&'*+-.^_`|~ only)"
        ));
    }
    match (action, value.is_empty()) {
        (HeaderAction::Remove, false) => {
            return Err(format!(
                "`{key} remove {name}` takes no value, not `{value}`"
            ))
        }
        (HeaderAction::Set | HeaderAction::Add, true) => {
            return Err(format!("`{key} {} {name}` needs a value", action.word()))
        }
        _ => {}
    }
    check_protected(direction, action, name)?;
    let value = template(name, value)?;
    if direction == Direction::Request && name.eq_ignore_ascii_case("host") {
        check_host(&value)?;
    }
    Ok(HeaderRule {
        action,
        name: name.to_string(),
        value,
    })
}

/// The first whitespace-separated word of `text` and the rest, trimmed at its start.
fn split_word(text: &str) -> (&str, &str) {
    match text.find(char::is_whitespace) {
        Some(at) => (&text[..at], text[at..].trim_start()),
        None => (text, ""),
    }
}

/// Refuses a rule on a field the proxy owns, saying why.
fn check_protected(direction: Direction, action: HeaderAction, name: &str) -> Result<(), String> {
    let verb = action.word();
    let find = |list: &[&'static str]| list.iter().find(|n| n.eq_ignore_ascii_case(name)).copied();
    if let Some(canonical) = find(FRAMING) {
        return Err(format!(
            "{canonical} is a hop-by-hop or framing header, which the proxy writes itself for \
             each connection; a rule cannot {verb} it"
        ));
    }
    if direction == Direction::Response {
        return Ok(());
    }
    if let Some(canonical) = find(FORWARDING) {
        return Err(format!(
            "{canonical} is set by the proxy (a client's is replaced, a trusted proxy's kept); \
             a rule cannot {verb} it"
        ));
    }
    if name.eq_ignore_ascii_case("expect") {
        return Err(format!(
            "Expect is dropped by the proxy (the whole body is sent at once); a rule cannot \
             {verb} it"
        ));
    }
    if name.eq_ignore_ascii_case("host") && action != HeaderAction::Set {
        return Err(format!(
            "a request has exactly one Host; a rule can only set it, not {verb} it"
        ));
    }
    Ok(())
}

/// `tchar` of RFC 9110 §5.6.2.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Reads a value: text (no control character but tab) and variables.
fn template(name: &str, text: &str) -> Result<Vec<ValuePart>, String> {
    if let Some(b) = text
        .bytes()
        .find(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
    {
        return Err(format!(
            "the value of {name} has the control byte {b:#04x}, which no header value may \
             contain"
        ));
    }
    let known = || {
        VARIABLES
            .iter()
            .map(|(n, _)| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        literal.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(more) = after.strip_prefix('$') {
            literal.push('$');
            rest = more;
            continue;
        }
        let (var_name, more) = match after.strip_prefix('{') {
            Some(inner) => match inner.find('}') {
                Some(end) => (&inner[..end], &inner[end + 1..]),
                None => return Err(format!("`${{` without its `}}` in the value of {name}")),
            },
            None => {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], &after[end..])
            }
        };
        let Some(&(_, var)) = VARIABLES.iter().find(|(n, _)| *n == var_name) else {
            let what = if var_name.is_empty() {
                "a lone `$`".to_string()
            } else {
                format!("unknown variable `${var_name}`")
            };
            return Err(format!(
                "{what} in the value of {name}; the variables are {} (write $$ for a $)",
                known()
            ));
        };
        if !literal.is_empty() {
            parts.push(ValuePart::Text(std::mem::take(&mut literal)));
        }
        parts.push(ValuePart::Var(var));
        rest = more;
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        parts.push(ValuePart::Text(literal));
    }
    Ok(parts)
}

/// A request's `set Host` value must be one authority (`host[:port]`), as the proxy checks
/// the client's: checked with the variables' shapes (`$server` is a `host:port` and
/// `$entry` a name; `$client_addr` may be an IPv6 address, which needs brackets).
fn check_host(value: &[ValuePart]) -> Result<(), String> {
    let mut sample = String::new();
    for part in value {
        match part {
            ValuePart::Text(t) => sample.push_str(t),
            ValuePart::Var(Variable::Server) => sample.push_str("server.example:80"),
            ValuePart::Var(Variable::Entry) => sample.push_str("entry"),
            ValuePart::Var(Variable::RequestId) => sample.push_str("0123abcd"),
            ValuePart::Var(Variable::ClientAddr) => {
                return Err(
                    "Host cannot be set to $client_addr (an IPv6 address is no host \
                            name)"
                        .to_string(),
                )
            }
        }
    }
    if is_authority(&sample) {
        Ok(())
    } else {
        Err(format!(
            "Host must be set to one host[:port], not `{}`",
            format_value(value)
        ))
    }
}

/// `host[:port]`: a reg-name or IPv4 address, or an IPv6 literal in brackets, then an
/// optional port of digits.
fn is_authority(text: &str) -> bool {
    let (host, port) = match text.strip_prefix('[') {
        Some(literal) => match literal.find(']') {
            Some(end) if end > 0 => {
                let inside = &literal[..end];
                if !inside
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b":.".contains(&b))
                {
                    return false;
                }
                ("x", &literal[end + 1..])
            }
            _ => return false,
        },
        None => match text.find(':') {
            Some(colon) => (&text[..colon], &text[colon..]),
            None => (text, ""),
        },
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+=".contains(&b));
    let port_ok = match port.strip_prefix(':') {
        None => port.is_empty(),
        Some(digits) => !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()),
    };
    host_ok && port_ok
}

/// A value as the configuration writes it (`$` doubled in text, a variable braced when a
/// name character follows it).
pub fn format_value(value: &[ValuePart]) -> String {
    let mut out = String::new();
    for (i, part) in value.iter().enumerate() {
        match part {
            ValuePart::Text(t) => out.push_str(&t.replace('$', "$$")),
            ValuePart::Var(v) => {
                let glued = matches!(
                    value.get(i + 1),
                    Some(ValuePart::Text(t))
                        if t.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                );
                if glued {
                    out.push_str(&format!("${{{}}}", v.name()));
                } else {
                    out.push('$');
                    out.push_str(v.name());
                }
            }
        }
    }
    out
}

/// A rule as its line's value: `set NAME VALUE`, `add NAME VALUE`, `remove NAME`.
pub fn format_rule(rule: &HeaderRule) -> String {
    match rule.action {
        HeaderAction::Remove => format!("remove {}", rule.name),
        action => format!(
            "{} {} {}",
            action.word(),
            rule.name,
            format_value(&rule.value)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(text: &str) -> Result<HeaderRule, String> {
        rule("RequestHeader", Direction::Request, text)
    }

    fn compiled(lines: &[&str]) -> HeaderRules {
        HeaderRules::new(lines.iter().map(|l| req(l).unwrap()).collect())
    }

    #[test]
    fn rules_run_in_order() {
        let r = compiled(&[
            "add X-A 1",
            "set X-A 2",
            "add X-A 3",
            "remove X-B",
            "add X-B 4",
        ]);
        let lines: Vec<String> = r.lines().map(format_rule).collect();
        assert_eq!(lines, ["set X-A 2", "add X-A 3", "add X-B 4"]);
        assert!(r.drops(b"x-a") && r.drops(b"X-B") && !r.drops(b"X-C"));
        let r = compiled(&["add X-A 1"]);
        assert!(!r.drops_any(), "add keeps what was received");
        let r = compiled(&["set X-A 1", "remove x-a"]);
        assert_eq!(r.lines().count(), 0);
        assert!(r.drops(b"X-A"));
    }

    #[test]
    fn host_is_set_once_in_place() {
        let r = compiled(&["set Host $server", "set X-A b"]);
        assert_eq!(r.host().map(|h| h.name.as_str()), Some("Host"));
        assert_eq!(r.lines_but_host().count(), 1);
        assert_eq!(r.lines().count(), 2, "a response writes every line");
        assert!(r.uses_server() && !r.uses_request_id());
        assert!(req("set Host api.internal:8080").is_ok());
        assert!(req("set Host [::1]:80").is_ok());
        for bad in [
            "set Host a b",
            "set Host $server:81",
            "set Host a/b",
            "set Host $client_addr",
        ] {
            assert!(req(bad).is_err(), "{bad}");
        }
        assert!(req("add Host x").unwrap_err().contains("only set it"));
        assert!(req("remove Host").unwrap_err().contains("only set it"));
    }

    #[test]
    fn variables_and_dollars() {
        let r = req("set X-Id ${request_id}x-$$-$entry $server").unwrap();
        assert_eq!(
            r.value,
            vec![
                ValuePart::Var(Variable::RequestId),
                ValuePart::Text("x-$-".into()),
                ValuePart::Var(Variable::Entry),
                ValuePart::Text(" ".into()),
                ValuePart::Var(Variable::Server),
            ]
        );
        assert_eq!(format_rule(&r), "set X-Id ${request_id}x-$$-$entry $server");
        assert!(req("set X-A $nope")
            .unwrap_err()
            .contains("unknown variable `$nope`"));
        assert!(req("set X-A a$").unwrap_err().contains("a lone `$`"));
        assert!(req("set X-A ${entry").unwrap_err().contains("without its"));
    }

    #[test]
    fn protected_and_malformed_rules_are_refused() {
        let e = req("remove X-Forwarded-For").unwrap_err();
        assert!(e.starts_with("X-Forwarded-For is set by the proxy"), "{e}");
        assert!(e.ends_with("a rule cannot remove it"), "{e}");
        assert!(req("set content-length 5").unwrap_err().contains("framing"));
        let resp = |t| rule("ResponseHeader", Direction::Response, t);
        assert!(resp("remove Transfer-Encoding").is_err());
        assert!(
            resp("remove X-Forwarded-For").is_ok(),
            "only requests carry them"
        );
        assert!(req("set X-A").unwrap_err().contains("needs a value"));
        assert!(req("remove X-A 1").unwrap_err().contains("takes no value"));
        assert!(req("set X(A) 1").unwrap_err().contains("not a header name"));
        assert!(req("replace X-A 1")
            .unwrap_err()
            .contains("takes `set NAME VALUE`"));
        assert!(req("set X-A a\0b")
            .unwrap_err()
            .contains("control byte 0x00"));
        assert!(req("set X-A a\tb").is_ok());
    }
}
