//! `proxy-reverse-check`: validates a `proxy_reverse.conf` without Monkey (the `nginx -t` of
//! the plugin), explains which entry serves a path, prints a path to try per entry, and prints
//! Monkey's `[HANDLERS]` lines.
//!
//! Exit status: 0 valid (warnings, `FILE:LINE: warning: message` on stderr, do not change
//! it), 1 invalid configuration (the `FILE:LINE: message` lines go to stderr), 2 usage error,
//! 3 `--explain` path matched by no entry.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use proxy_reverse::config::{self, handlers, keys, Config, Resolver, SystemResolver};
use proxy_reverse::routing::Router;

/// What the command line asks for.
#[derive(Debug)]
enum Mode {
    Summary,
    /// `--explain PATH [--host HOST] [--method METHOD]`.
    Explain(String),
    Handlers,
    Urls,
}

#[derive(Debug)]
struct Args {
    file: PathBuf,
    mode: Mode,
    hosts: HashMap<String, IpAddr>,
    /// `--host`: the `Host` of the request `--explain` routes.
    host: Option<String>,
    /// `--method`: its method (default `GET`).
    method: Option<String>,
}

const USAGE: &str =
    "usage: proxy-reverse-check [--explain PATH [--host HOST] [--method METHOD] | --urls | --handlers] [--resolve HOST=IP]... FILE";

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.iter().any(|a| a == "-h" || a == "--help") {
        print!("{}", help());
        return ExitCode::SUCCESS;
    }
    let args = match parse_args(argv) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("proxy-reverse-check: {msg}\n{USAGE}\n(--help lists every option and key)");
            return ExitCode::from(2);
        }
    };
    let resolver = Overrides { hosts: &args.hosts };
    let config = match config::load_with(&args.file, &resolver) {
        Ok(c) => c,
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            return ExitCode::from(1);
        }
    };
    for w in config.warnings() {
        eprintln!("{w}");
    }
    match args.mode {
        Mode::Summary => {
            println!("ok: {}", config.summary());
            ExitCode::SUCCESS
        }
        Mode::Handlers => {
            for line in handlers::handler_lines(&config) {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Mode::Explain(path) => explain(
            &config,
            &path,
            args.host.as_deref(),
            args.method.as_deref().unwrap_or("GET"),
        ),
        Mode::Urls => urls(&config),
    }
}

fn set_mode(mode: &mut Mode, new: Mode) -> Result<(), String> {
    match mode {
        Mode::Summary => {
            *mode = new;
            Ok(())
        }
        _ => Err("--explain, --urls and --handlers cannot be combined".to_string()),
    }
}

fn parse_args(argv: Vec<String>) -> Result<Args, String> {
    let mut file = None;
    let mut mode = Mode::Summary;
    let mut hosts = HashMap::new();
    let mut host = None;
    let mut method = None;
    let mut it = argv.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--explain" => {
                let path = it.next().ok_or("--explain needs a PATH")?;
                set_mode(&mut mode, Mode::Explain(path))?;
            }
            "--host" => host = Some(it.next().ok_or("--host needs a HOST")?),
            "--method" => method = Some(it.next().ok_or("--method needs a METHOD")?),
            "--handlers" => set_mode(&mut mode, Mode::Handlers)?,
            "--urls" => set_mode(&mut mode, Mode::Urls)?,
            "--resolve" => {
                let spec = it.next().ok_or("--resolve needs HOST=IP")?;
                let (host, ip) = spec
                    .split_once('=')
                    .ok_or_else(|| format!("--resolve `{spec}`: write HOST=IP"))?;
                let ip: IpAddr = ip
                    .parse()
                    .map_err(|_| format!("--resolve `{spec}`: `{ip}` is not an IP address"))?;
                hosts.insert(host.to_string(), ip);
            }
            "--" => {
                if let Some(f) = it.next() {
                    if file.replace(PathBuf::from(f)).is_some() {
                        return Err("only one FILE may be given".into());
                    }
                }
            }
            a if a.starts_with('-') && a.len() > 1 => return Err(format!("unknown option `{a}`")),
            a => {
                if file.replace(PathBuf::from(a)).is_some() {
                    return Err("only one FILE may be given".into());
                }
            }
        }
    }
    let file = file.ok_or("no FILE given")?;
    if (host.is_some() || method.is_some()) && !matches!(mode, Mode::Explain(_)) {
        return Err("--host and --method go with --explain".into());
    }
    Ok(Args {
        file,
        mode,
        hosts,
        host,
        method,
    })
}

/// `--resolve` answers first, then the system resolver.
struct Overrides<'a> {
    hosts: &'a HashMap<String, IpAddr>,
}

impl Resolver for Overrides<'_> {
    fn resolve(&self, host: &str, port: u16) -> Result<SocketAddr, String> {
        match self.hosts.get(host) {
            Some(ip) => Ok(SocketAddr::new(*ip, port)),
            None => SystemResolver.resolve(host, port),
        }
    }
}

fn explain(c: &Config, target: &str, host: Option<&str>, method: &str) -> ExitCode {
    // Entries see the path without its query string, percent-decoded as Monkey decodes it.
    let (raw, query) = match target.split_once('?') {
        Some((raw, query)) => (raw, Some(query)),
        None => (target, None),
    };
    let decoded = proxy_reverse::routing::routing_path(raw);
    if decoded != raw {
        println!("routing by the decoded path {decoded}");
    }
    let path: &str = &decoded;
    if c.statistics_url.as_deref() == Some(path) {
        println!("statistics: {path} is the StatisticsURL; the plugin answers it itself");
        return ExitCode::SUCCESS;
    }
    let router = match Router::new(&c.entries) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{}: {e}", c.file.display());
            return ExitCode::from(1);
        }
    };
    let request = match host {
        Some(h) => format!("{method} {path} (Host {h})"),
        None if method == "GET" => path.to_string(),
        None => format!("{method} {path}"),
    };
    let Some(m) = router.explain(&c.entries, path, host, method) else {
        println!("no entry matches {request}");
        return ExitCode::from(3);
    };
    let Some(entry) = c.entries.get(m.entry) else {
        println!("no entry matches {request}");
        return ExitCode::from(3);
    };
    let servers: Vec<String> = entry
        .servers
        .iter()
        .map(proxy_reverse::config::ServerSpec::list_item)
        .collect();
    println!(
        "entry {}: {} {}",
        m.entry + 1,
        entry.balancer,
        servers.join(" ")
    );
    match m.rule.and_then(|r| entry.matches.get(r)) {
        Some(rule) => println!(
            "  matched by line {}: Match {} (entry at line {})",
            rule.line, rule.pattern, entry.line
        ),
        None => println!(
            "  every path: the entry has no Match (entry at line {})",
            entry.line
        ),
    }
    if let Some(h) = m.host.and_then(|i| entry.route.hosts.get(i)) {
        println!(
            "  host accepted by line {}: MatchHost {}",
            h.line,
            h.pattern.written()
        );
    }
    if !entry.route.methods.is_empty() {
        println!(
            "  method {method} accepted by MatchMethod {}",
            entry.route.methods.join(" ")
        );
    }
    match router.rewriter(m.entry) {
        Some(rw) => {
            let mut sent = rw.rewrite(raw);
            if let Some(q) = query {
                sent.push('?');
                sent.push_str(q);
            }
            let (key, value) = entry
                .route
                .rewrite
                .as_ref()
                .map(|r| r.rewrite.written())
                .unwrap_or_default();
            println!("  the backend receives {sent} ({key} {value})");
        }
        None => println!("  the backend receives {target} (as sent)"),
    }
    for line in config::affinity::describe(&entry.affinity) {
        println!("  {line}");
    }
    match m.entry {
        0 => {}
        1 => println!("  entry 1 did not match"),
        n => println!("  entries 1 to {n} did not match"),
    }
    if let Some(limits) = entry.limits.describe(entry.attempts_count) {
        println!("  limits: {limits}");
    }
    // Header rules, in the order they run (after the proxy's own rewrite).
    for (key, rules) in [
        ("RequestHeader", &entry.request_headers),
        ("ResponseHeader", &entry.response_headers),
    ] {
        for rule in rules.rules() {
            println!("  {key} {}", config::headers::format_rule(rule));
        }
    }
    ExitCode::SUCCESS
}

/// One path to try per entry, then the statistics page: `PATH  entry N (line L): ...` lines,
/// the paths in one column so that a script can put `http://HOST:PORT` in front of each.
fn urls(c: &Config) -> ExitCode {
    let samples = proxy_reverse::routing::samples::sample_targets(c);
    let mut rows: Vec<(String, String)> = Vec::new();
    for (i, (entry, sample)) in c.entries.iter().zip(samples).enumerate() {
        let servers: Vec<String> = entry
            .servers
            .iter()
            .map(proxy_reverse::config::ServerSpec::list_item)
            .collect();
        let what = format!(
            "entry {} (line {}): {} {}",
            i + 1,
            entry.line,
            entry.balancer,
            servers.join(" ")
        );
        let what = match proxy_reverse::routing::samples::sample_request(entry) {
            Some((Some(host), method)) => format!("{what} (with Host: {host}, {method})"),
            Some((None, method)) if method != "GET" => format!("{what} ({method})"),
            _ => what,
        };
        match sample {
            Some(path) => rows.push((path, what)),
            None => eprintln!(
                "{}:{}: no path found that reaches this entry (see the warnings above, or try \
                 --explain PATH)",
                c.file.display(),
                entry.line
            ),
        }
    }
    if let Some(url) = &c.statistics_url {
        rows.push((
            url.clone(),
            "statistics (also ?format=json, ?format=prometheus)".to_string(),
        ));
    }
    let width = rows.iter().map(|(p, _)| p.len()).max().unwrap_or(0);
    for (path, what) in rows {
        println!("{path:<width$}  {what}");
    }
    ExitCode::SUCCESS
}

/// What `RequestHeader` and `ResponseHeader` may name and insert.
fn header_rules_help() -> String {
    use config::headers::{protected, Direction, VARIABLES};
    let vars: Vec<String> = VARIABLES.iter().map(|(n, _)| format!("${n}")).collect();
    format!(
        "\nHeader rules (RequestHeader, ResponseHeader; docs/headers.md):\n\
         \x20 variables: {} (write ${{name}} when letters follow, $$ for a $)\n\
         \x20 RequestHeader cannot touch (Host may only be set, to one host[:port]):\n\
         \x20     {}\n\
         \x20 ResponseHeader cannot touch:\n\
         \x20     {}\n",
        vars.join(" "),
        protected(Direction::Request).join(" "),
        protected(Direction::Response).join(" "),
    )
}

fn help() -> String {
    let mut h = String::new();
    h.push_str(USAGE);
    h.push_str(
        "

Checks a proxy_reverse configuration file without Monkey.

  FILE               valid: exit 0 and a one-line summary on stdout (and any
                     FILE:LINE: warning: lines on stderr, e.g. an entry that earlier
                     entries leave no request to);
                     invalid: exit 1 and one FILE:LINE: message per problem on stderr
  --explain PATH     print the entry that serves PATH (`entry N: BALANCER servers...`),
                     the Match (and MatchHost) rule that chose it, the target its
                     backend receives (after PathRewrite / PathStripPrefix, the query
                     kept) and the entry's header rules; exit 3 if no entry matches
    --host HOST      ... for a request with this Host (port and case as a client
                     sends them; without it, no MatchHost rule accepts)
    --method METHOD  ... for a request with this method (default GET)
  --urls             print one path per entry that reaches it (derived from its Match
                     rules and checked as --explain would), then the StatisticsURL
  --handlers         print the Match lines for [HANDLERS] in Monkey's sites/default
  --resolve HOST=IP  use IP for HOST instead of asking DNS (repeatable)
  -h, --help         this text

Exit status: 0 ok (warnings included), 1 invalid configuration, 2 usage error, 3 no entry
matches PATH.

Sections: [PROXY_DEFAULTS] (at most one; its keys are copied into every entry lacking
them) and [PROXY_ENTRY] (one or more, tried in file order). Lines are `Key Value`, any
indentation; `#` starts a comment line.

Keys:
",
    );
    h.push_str(&keys::help_text());
    h.push_str(&header_rules_help());
    h.push_str("\nLoad balancers (names are case-insensitive):\n");
    for r in config::BALANCERS {
        let aliases = if r.aliases.is_empty() {
            String::new()
        } else {
            format!(" (also {})", r.aliases.join(", "))
        };
        h.push_str(&format!("  {}{aliases}\n      {}\n", r.name, r.doc));
    }
    h
}
