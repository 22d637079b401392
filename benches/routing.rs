//! Routing cost against the number of entries (#19): a path routed among 10, 100 and 1 000
//! entries, the last one matching (ids of four digits, so every size routes paths of the same length), for a literal-prefix configuration (`Match ^/svc0042/`) and
//! a regex configuration (`Match ^/svc0042/[0-9]+\.json$`), and with host rules
//! (`MatchHost h0042.example.com`, `Match ^/`). The acceptance: 1 000 entries cost at most
//! 2 × 10 entries.
//!
//! `cargo bench --bench routing -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use proxy_reverse::config::{Entry, HostPattern, HostRule, MatchRule};
use proxy_reverse::routing::Router;
use regex::RegexSet;

fn entries(n: usize, pattern: impl Fn(usize) -> String) -> Vec<Entry> {
    (0..n)
        .map(|i| {
            let rule = MatchRule {
                pattern: pattern(i),
                line: i + 1,
            };
            Entry::with_defaults(i + 1, vec![rule], Vec::new())
        })
        .collect()
}

/// The router before #19, for comparison: one regex set per entry (a prefix comparison
/// when every rule of the entry is `^literal`), tried in file order.
struct PerEntry(Vec<(RegexSet, Option<Vec<String>>)>);

impl PerEntry {
    fn new(entries: &[Entry]) -> PerEntry {
        PerEntry(
            entries
                .iter()
                .map(|e| {
                    let set = RegexSet::new(e.matches.iter().map(|m| m.pattern.as_str())).unwrap();
                    let literal = |p: &str| {
                        let l = p.strip_prefix('^')?;
                        (!l.contains([
                            '\\', '.', '+', '*', '?', '(', ')', '|', '[', ']', '{', '}', '^', '$',
                        ]))
                        .then(|| l.to_string())
                    };
                    let prefixes = e.matches.iter().map(|m| literal(&m.pattern)).collect();
                    (set, prefixes)
                })
                .collect(),
        )
    }

    fn route(&self, path: &str) -> Option<usize> {
        self.0.iter().position(|(set, prefixes)| match prefixes {
            Some(p) => p.iter().any(|p| path.starts_with(p.as_str())),
            None => set.is_match(path),
        })
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("route");
    for n in [10, 100, 1000] {
        let last = n - 1;
        let literals = entries(n, |i| format!("^/svc{i:04}/"));
        let literal = Router::new(&literals).unwrap();
        let path = format!("/svc{last:04}/items/42");
        assert_eq!(literal.route(&path), Some(last));
        g.bench_with_input(BenchmarkId::new("literal", n), &path, |b, path| {
            b.iter(|| literal.route(black_box(path)))
        });
        let before = PerEntry::new(&literals);
        assert_eq!(before.route(&path), Some(last));
        g.bench_with_input(
            BenchmarkId::new("literal-per-entry", n),
            &path,
            |b, path| b.iter(|| before.route(black_box(path))),
        );

        let regexes = entries(n, |i| format!(r"^/svc{i:04}/[0-9]+\.json$"));
        let regex = Router::new(&regexes).unwrap();
        let path = format!("/svc{last:04}/42.json");
        assert_eq!(regex.route(&path), Some(last));
        g.bench_with_input(BenchmarkId::new("regex", n), &path, |b, path| {
            b.iter(|| regex.route(black_box(path)))
        });
        let before = PerEntry::new(&regexes);
        assert_eq!(before.route(&path), Some(last));
        g.bench_with_input(BenchmarkId::new("regex-per-entry", n), &path, |b, path| {
            b.iter(|| before.route(black_box(path)))
        });

        let mut hosted = entries(n, |_| "^/".to_string());
        for (i, e) in hosted.iter_mut().enumerate() {
            e.route.hosts.push(HostRule {
                pattern: HostPattern::Exact(format!("h{i:04}.example.com")),
                line: i + 1,
            });
        }
        let hosts = Router::new(&hosted).unwrap();
        let host = format!("H{last:04}.example.com:8080");
        assert_eq!(hosts.route_request("/x", Some(&host), "GET"), Some(last));
        g.bench_with_input(BenchmarkId::new("host", n), &host, |b, host| {
            b.iter(|| hosts.route_request(black_box("/x"), Some(black_box(host)), "GET"))
        });
    }
    g.finish();

    // The shipped example's rules (conf/proxy_reverse.conf): what most requests cost.
    let mut g = c.benchmark_group("route-shipped");
    let mut shipped = entries(3, |_| String::new());
    shipped[0].matches = vec![rule(r"\.php$"), rule("^/api/")];
    shipped[1].matches = vec![rule(r"\.(jpg|png|gif|css|js|html)$")];
    shipped[2].matches = vec![rule("^/")];
    let router = Router::new(&shipped).unwrap();
    let before = PerEntry::new(&shipped);
    for (name, path) in [
        ("php", "/index.php"),
        ("api", "/api/v1/users"),
        ("png", "/img/logo.png"),
        ("other", "/readme.txt"),
    ] {
        assert_eq!(router.route(path), before.route(path));
        g.bench_function(BenchmarkId::new("combined", name), |b| {
            b.iter(|| router.route(black_box(path)))
        });
        g.bench_function(BenchmarkId::new("per-entry", name), |b| {
            b.iter(|| before.route(black_box(path)))
        });
    }
    g.finish();
}

fn rule(pattern: &str) -> MatchRule {
    MatchRule {
        pattern: pattern.to_string(),
        line: 1,
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
