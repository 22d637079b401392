//! The scripts without a real Monkey: they are valid bash, `install.sh` puts the plugin and
//! the checker in place, and `run-with-monkey.sh` (with a stand-in `monkey` that prints what
//! it was given) checks the right file, starts and stops the demo origins and prints the URLs.
//! The same quick start in a real Monkey is `tests/monkey_quick_start.rs`.

mod script_support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use script_support::*;

#[test]
fn scripts_are_valid_bash() {
    for script in ["install.sh", "run-with-monkey.sh", "bench.sh"] {
        let out = Command::new("bash")
            .arg("-n")
            .arg(repo().join("scripts").join(script))
            .output()
            .unwrap();
        assert!(out.status.success(), "{script}: {out:?}");
    }
}

/// A Monkey configuration directory like a real one: monkey.conf with `Listen` and
/// `PidFile`, an empty plugins.load, sites/default with a host and no handlers.
fn monkey_conf(dir: &Path) {
    std::fs::create_dir_all(dir.join("sites")).unwrap();
    std::fs::write(
        dir.join("monkey.conf"),
        "[SERVER]\n    Listen 2001\n    Workers 1\n    PidFile /nonexistent/monkey.pid\n",
    )
    .unwrap();
    std::fs::write(dir.join("plugins.load"), "[PLUGINS]\n").unwrap();
    std::fs::write(
        dir.join("sites/default"),
        "[HOST]\n    ServerName 127.0.0.1\n    DocumentRoot /tmp\n",
    )
    .unwrap();
}

#[test]
fn install_puts_the_plugin_and_the_checker_next_to_each_other() {
    let root = scratch("install");
    let conf = root.join("conf");
    monkey_conf(&conf);
    let prebuilt = prebuilt();
    let run = || {
        Command::new("bash")
            .arg(repo().join("scripts/install.sh"))
            .arg(&conf)
            .env("PREBUILT", &prebuilt)
            .output()
            .unwrap()
    };
    let out = run();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{out:?}");
    let lib = root.join("lib").canonicalize().unwrap();
    let check = lib.join("proxy-reverse-check");
    let installed = conf.join("plugins/proxy_reverse/proxy_reverse.conf");
    assert!(lib.join("monkey-proxy_reverse.so").is_file());
    assert!(
        stdout.contains(&format!(
            "installed {} (the configuration checker",
            check.display()
        )),
        "{stdout}"
    );
    // The installed checker checked the installed configuration.
    assert!(
        stdout.ends_with("ok: 3 entries, 6 servers, statistics at /proxy-status\n"),
        "{stdout}"
    );

    // The copy's comments name the installed checker and file; each command works.
    let text = std::fs::read_to_string(&installed).unwrap();
    assert!(!text.contains("cargo run"), "{text}");
    let prefix = format!("{} ", check.display());
    let mut commands = 0;
    for line in text.lines() {
        let Some(args) = line.trim_start_matches(['#', ' ']).strip_prefix(&prefix) else {
            continue;
        };
        let out = Command::new(&check)
            .args(args.split_whitespace())
            .output()
            .unwrap();
        assert!(out.status.success(), "{line}: {out:?}");
        commands += 1;
    }
    assert_eq!(commands, 5, "{text}");
    assert!(text.contains(&format!(
        "{} {} --explain /index.php",
        check.display(),
        installed.display()
    )));

    // Monkey's files; a second run changes nothing and keeps the user's configuration.
    std::fs::write(
        &installed,
        "[PROXY_ENTRY]\nMatch ^/\nServerList 127.0.0.1:1\n",
    )
    .unwrap();
    let out = run();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).ends_with("ok: 1 entry, 1 server, statistics off\n")
    );
    let load = std::fs::read_to_string(conf.join("plugins.load")).unwrap();
    assert_eq!(
        load,
        format!(
            "[PLUGINS]\n    Load {}/monkey-proxy_reverse.so\n",
            lib.display()
        )
    );
    let site = std::fs::read_to_string(conf.join("sites/default")).unwrap();
    assert_eq!(site.matches("Match /.* proxy_reverse").count(), 1, "{site}");
    assert!(std::fs::read_to_string(&installed)
        .unwrap()
        .starts_with("[PROXY_ENTRY]\nMatch ^/"));
}

/// A stand-in `monkey`: prints the configuration file it would read and its arguments.
fn fake_monkey(root: &Path) -> std::path::PathBuf {
    let bin = root.join("bin/monkey");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    // With FAKE_MONKEY_PROBE=PORT it also asks 127.0.0.1:PORT for `/probe`, as Monkey would
    // proxy a request there, and prints the answer's last line (the body).
    std::fs::write(
        &bin,
        "#!/usr/bin/env bash\n\
         echo \"fake monkey: PROXY_REVERSE_CONF=$PROXY_REVERSE_CONF $*\"\n\
         if [ -n \"${FAKE_MONKEY_PROBE:-}\" ]; then\n\
           exec 3<>\"/dev/tcp/127.0.0.1/$FAKE_MONKEY_PROBE\" || exit 1\n\
           printf 'GET /probe HTTP/1.0\\r\\n\\r\\n' >&3\n\
           echo \"fake monkey got: $(tail -n 1 <&3)\"\n\
         fi\n",
    )
    .unwrap();
    let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(&bin, mode).unwrap();
    monkey_conf(&root.join("conf"));
    bin
}

#[test]
fn run_with_monkey_prints_the_urls_and_stops_its_demo_origins() {
    let root = scratch("run_fake");
    let monkey = fake_monkey(&root);
    let free: Vec<&str> = DEMO_ADDRS.into_iter().filter(|a| !listening(a)).collect();
    let script = Script::start(
        "run-with-monkey.sh",
        &[],
        &[
            ("MONKEY_BIN", monkey.to_str().unwrap()),
            ("PREBUILT", prebuilt().to_str().unwrap()),
            ("RUN_DIR", root.join("run").to_str().unwrap()),
            ("PORT", "2999"),
        ],
    );
    let (code, lines) = script.finish(Duration::from_secs(60));
    let out = lines.join("\n");
    assert_eq!(code, Some(0), "{out}");
    let example = repo().join("conf/proxy_reverse.conf");
    assert_eq!(lines[0], format!("configuration: {}", example.display()));
    assert_eq!(
        lines[1],
        "ok: 3 entries, 6 servers, statistics at /proxy-status"
    );
    if free.len() == DEMO_ADDRS.len() {
        assert_eq!(
            lines[2],
            format!("  demo origins on {}", DEMO_ADDRS.join(" "))
        );
    }
    let urls = printed_urls(&lines);
    let urls: Vec<&str> = urls.iter().map(|(u, _)| u.as_str()).collect();
    assert_eq!(
        urls,
        [
            "http://127.0.0.1:2999/index.php",
            "http://127.0.0.1:2999/index.jpg",
            "http://127.0.0.1:2999/",
            "http://127.0.0.1:2999/proxy-status",
        ],
        "{out}"
    );
    // Printed before Monkey starts; Monkey reads the example where it is.
    let last = lines.last().unwrap();
    assert!(
        last.starts_with(&format!(
            "fake monkey: PROXY_REVERSE_CONF={} -c ",
            example.display()
        )),
        "{out}"
    );
    // Monkey gone, the demo origins are gone too.
    for addr in free {
        assert!(
            wait_closed(addr, Duration::from_secs(5)),
            "{addr} still listening"
        );
    }
}

#[test]
fn run_with_monkey_names_the_users_own_file() {
    let root = scratch("run_own");
    let monkey = fake_monkey(&root);
    let prebuilt = prebuilt();
    let env = |run: &str| {
        vec![
            ("MONKEY_BIN", monkey.to_str().unwrap().to_string()),
            ("PREBUILT", prebuilt.to_str().unwrap().to_string()),
            ("RUN_DIR", root.join(run).to_str().unwrap().to_string()),
        ]
    };
    let run = |file: &Path, run: &str| {
        let out = Command::new("bash")
            .arg(repo().join("scripts/run-with-monkey.sh"))
            .arg(file.file_name().unwrap())
            .current_dir(file.parent().unwrap())
            .envs(env(run))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    // A broken file: the checker's messages name it as given, and Monkey is not started.
    let broken = root.join("broken.conf");
    std::fs::write(
        &broken,
        "[PROXY_ENTRY]\nMatch ^/\nServerList http://127.0.0.1:18081 127.0.0.1:99999 ftp://127.0.0.1\n",
    )
    .unwrap();
    let (code, out, err) = run(&broken, "run1");
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(!out.contains("fake monkey"), "{out}");
    assert_eq!(
        err,
        "broken.conf:3: server `127.0.0.1:99999`: port 99999 is out of range (1 to 65535)\n\
         broken.conf:3: server `ftp://127.0.0.1`: `ftp://` is not a scheme the plugin speaks; write HOST:PORT, http://HOST:PORT or https://HOST:PORT\n\
         run-with-monkey.sh: fix broken.conf first (the plugin would answer 503)\n"
    );

    // A valid one: Monkey gets its absolute path; no demo origins for the user's own file.
    let own = root.join("own.conf");
    std::fs::write(
        &own,
        "[PROXY_DEFAULTS]\nStatisticsURL /st\n[PROXY_ENTRY]\nMatch .*\nServerList http://127.0.0.1:18081\n[PROXY_ENTRY]\nMatch \\.php$\nServerList 127.0.0.1:18082\n",
    )
    .unwrap();
    let (code, out, err) = run(&own, "run2");
    assert_eq!(code, Some(0), "{out}{err}");
    let own = own.canonicalize().unwrap();
    assert!(
        out.starts_with("configuration: own.conf\nok: 2 entries, 2 servers, statistics at /st\n\n"),
        "{out}"
    );
    assert!(!out.contains("demo origin"), "{out}");
    assert!(out.contains("  http://127.0.0.1:2001/    entry 1 (line 3): FirstAlive 127.0.0.1:18081\n  http://127.0.0.1:2001/st  statistics"), "{out}");
    assert!(
        out.contains(&format!(
            "fake monkey: PROXY_REVERSE_CONF={} -c ",
            own.display()
        )),
        "{out}"
    );
    // The warning once (not again from --urls), then the entry --urls found no path for.
    assert_eq!(
        err,
        "own.conf:6: warning: this entry never serves a request: the entry at line 3 matches every path first (line 4: Match .*)\n\
         own.conf:6: no path found that reaches this entry (see the warnings above, or try --explain PATH)\n"
    );
    // Monkey's default location for the file is a link to it, so a restart by hand reads it too.
    let link = root.join("run2/conf/plugins/proxy_reverse/proxy_reverse.conf");
    assert_eq!(std::fs::read_link(link).unwrap(), own);
}

#[test]
fn run_with_monkey_starts_demo_origins_for_an_own_file_on_request() {
    let root = scratch("run_demo_own");
    let monkey = fake_monkey(&root);
    let port = free_port();
    let own = root.join("own.conf");
    std::fs::write(
        &own,
        format!("[PROXY_ENTRY]\nMatch ^/\nServerList http://127.0.0.1:{port} 10.0.0.1:80\n"),
    )
    .unwrap();
    let script = Script::start(
        "run-with-monkey.sh",
        &[own.to_str().unwrap()],
        &[
            ("MONKEY_BIN", monkey.to_str().unwrap()),
            ("PREBUILT", prebuilt().to_str().unwrap()),
            ("RUN_DIR", root.join("run").to_str().unwrap()),
            ("DEMO", "1"),
            ("FAKE_MONKEY_PROBE", &port.to_string()),
        ],
    );
    let (code, lines) = script.finish(Duration::from_secs(60));
    let out = lines.join("\n");
    assert_eq!(code, Some(0), "{out}");
    assert!(
        lines.contains(&format!("  demo origins on 127.0.0.1:{port}")),
        "{out}"
    );
    // While "Monkey" ran, the demo origin answered; once it is gone, so is the origin.
    assert_eq!(
        lines.last().unwrap(),
        &format!("fake monkey got: demo origin 127.0.0.1:{port}: GET /probe"),
        "{out}"
    );
    assert!(wait_closed(
        &format!("127.0.0.1:{port}"),
        Duration::from_secs(5)
    ));
}
