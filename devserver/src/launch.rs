//! Command-line compatibility with the servers SDK test harnesses launch.
//!
//! Two conventions are accepted, so an unmodified harness can start this server as an
//! "existing binary":
//! - the Temporal CLI dev server: `[server start-dev] --port P --ip IP --namespace NS
//!   --db-filename F --search-attribute NAME=TYPE --dynamic-config-value K=V --headless
//!   --ui-port N --http-port N --log-format F --log-level L …`;
//! - the Java test server: `<port> [--enable-time-skipping]`, which starts with time
//!   skipping *locked* unless the flag is given, exactly as that server does.
//!
//! Unknown flags are tolerated (with a warning) because harnesses pass options this server
//! has no use for; flags it cannot honour are reported, never silently mis-applied.

use std::{net::IpAddr, path::PathBuf, str::FromStr};

use temporalio_protos::temporal::api::enums::v1::IndexedValueType;

use crate::DevServerConfig;

/// What a command line asks for.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The server configuration.
    pub config: DevServerConfig,
    /// `--log-level`, if given.
    pub log_level: Option<String>,
    /// `--log-format`, if given (`json` or `pretty`).
    pub log_format: Option<String>,
    /// Notes about flags accepted but not acted on, to print at start.
    pub notes: Vec<String>,
    /// `--help` was asked for.
    pub help: bool,
}

/// Usage text for both conventions.
pub const USAGE: &str = "\
usage: convo-devserver [server start-dev] [--port P] [--ip IP] [--namespace NS]...
                       [--db-filename FILE] [--search-attribute NAME=TYPE]...
                       [--dynamic-config-value KEY=VALUE]... [--log-level L] [--log-format json|pretty]
                       [--headless] [--ui-port N] [--http-port N]
       convo-devserver <port> [--enable-time-skipping]      (Java test server form)

TYPE is one of Text, Keyword, Int, Double, Bool, Datetime, KeywordList.
Without --db-filename everything is kept in memory. Time skipping starts locked (the clock
follows real time) until a TestService client unlocks it.";

fn attribute_type(s: &str) -> Option<IndexedValueType> {
    Some(match s.to_ascii_lowercase().as_str() {
        "text" => IndexedValueType::Text,
        "keyword" => IndexedValueType::Keyword,
        "int" => IndexedValueType::Int,
        "double" => IndexedValueType::Double,
        "bool" => IndexedValueType::Bool,
        "datetime" => IndexedValueType::Datetime,
        "keywordlist" => IndexedValueType::KeywordList,
        _ => return None,
    })
}

/// Flags that take no value.
const SWITCHES: &[&str] = &["--headless", "--enable-time-skipping", "--help", "-h"];

/// Parses a command line (without the program name).
pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Launch, String> {
    let mut args: Vec<String> = args.iter().map(|a| a.as_ref().to_owned()).collect();
    let mut launch = Launch {
        config: DevServerConfig::default(),
        log_level: None,
        log_format: None,
        notes: Vec::new(),
        help: false,
    };
    // `server start-dev` as the CLI's subcommand path.
    if args.first().map(String::as_str) == Some("server") {
        args.remove(0);
        if args.first().map(String::as_str) == Some("start-dev") {
            args.remove(0);
        } else {
            return Err("only `server start-dev` is supported".into());
        }
    }
    // Java form: a bare port first. Without --enable-time-skipping it starts locked.
    if let Some(port) = args.first().and_then(|a| a.parse::<u16>().ok()) {
        launch.config.port = port;
        launch.config.time_skipping_locked = !args.iter().any(|a| a == "--enable-time-skipping");
        return Ok(launch);
    }
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].clone();
        i += 1;
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        if !flag.starts_with('-') {
            return Err(format!("unexpected argument {flag:?}\n\n{USAGE}"));
        }
        if SWITCHES.contains(&flag.as_str()) {
            match flag.as_str() {
                "--help" | "-h" => launch.help = true,
                "--enable-time-skipping" => launch.config.time_skipping_locked = false,
                _ => {} // --headless: there is no UI to suppress
            }
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None if i < args.len() && !args[i].starts_with("--") => {
                i += 1;
                args[i - 1].clone()
            }
            None => {
                launch.notes.push(format!("ignored flag {flag} (no value)"));
                continue;
            }
        };
        let bad = |what: &str| format!("{flag}: {what}: {value:?}");
        match flag.as_str() {
            "--port" | "-p" => launch.config.port = value.parse().map_err(|_| bad("not a port"))?,
            "--ip" => launch.config.ip = IpAddr::from_str(&value).map_err(|_| bad("not an IP address"))?,
            "--namespace" | "-n" => {
                if value.trim().is_empty() {
                    return Err(bad("namespace must not be empty"));
                }
                if value != crate::DEFAULT_NAMESPACE && !launch.config.namespaces.contains(&value) {
                    launch.config.namespaces.push(value);
                }
            }
            "--db-filename" | "-f" => launch.config.db_filename = Some(PathBuf::from(value)),
            "--search-attribute" => {
                let (name, ty) = value.split_once('=').ok_or_else(|| bad("expected NAME=TYPE"))?;
                let ty = attribute_type(ty).ok_or_else(|| bad("unknown type"))?;
                launch.config.search_attributes.retain(|(n, _)| n != name);
                launch.config.search_attributes.push((name.to_owned(), ty));
            }
            "--dynamic-config-value" => {
                let (key, raw) = value.split_once('=').ok_or_else(|| bad("expected KEY=VALUE"))?;
                let number = || raw.trim_matches('"').parse::<i64>().map_err(|_| bad("expected a number"));
                match key {
                    "limit.historyCount.suggestContinueAsNew" => launch.config.suggest_continue_as_new_events = number()? as usize,
                    "limit.historySize.suggestContinueAsNew" => launch.config.suggest_continue_as_new_bytes = number()?,
                    // Features this server always has on.
                    "frontend.enableUpdateWorkflowExecution"
                    | "frontend.enableUpdateWorkflowExecutionAsyncAccepted"
                    | "frontend.enableServerVersionCheck"
                    | "system.enableEagerWorkflowStart" => {}
                    _ => launch.notes.push(format!("dynamic config {key} is accepted but has no effect here")),
                }
            }
            "--log-level" => launch.log_level = Some(value),
            "--log-format" => launch.log_format = Some(value),
            "--ui-port" | "--http-port" | "--metrics-port" | "--ui-ip" | "--ui-public-path" | "--ui-asset-path"
            | "--ui-codec-endpoint" => launch.notes.push(format!("{flag} accepted: this server has no web UI or HTTP API (use the Temporal Web UI container against its gRPC port)")),
            "--sqlite-pragma" => launch.notes.push(format!("{flag} accepted: the store always runs WAL with synchronous=FULL and group commit")),
            other => launch.notes.push(format!("ignored unknown flag {other}")),
        }
    }
    Ok(launch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_sdk_core_passes_to_start_dev() {
        let l = parse(&[
            "server",
            "start-dev",
            "--port",
            "7444",
            "--namespace",
            "ns1",
            "--ip",
            "127.0.0.1",
            "--log-format",
            "json",
            "--log-level",
            "warn",
            "--dynamic-config-value",
            "frontend.enableServerVersionCheck=false",
            "--dynamic-config-value",
            "frontend.enableUpdateWorkflowExecution=true",
            "--db-filename",
            "/tmp/x.db",
            "--headless",
            "--search-attribute",
            "CustomTextField=Text",
            "--search-attribute=CustomIntField=Int",
            "--dynamic-config-value",
            "limit.historyCount.suggestContinueAsNew=50",
            "--some-new-flag",
            "v",
        ])
        .unwrap();
        assert_eq!(l.config.port, 7444);
        assert_eq!(l.config.namespaces, ["ns1"]);
        assert_eq!(l.config.db_filename.as_deref(), Some(std::path::Path::new("/tmp/x.db")));
        assert_eq!(
            l.config.search_attributes,
            [
                ("CustomTextField".to_owned(), IndexedValueType::Text),
                ("CustomIntField".to_owned(), IndexedValueType::Int)
            ]
        );
        assert_eq!(l.config.suggest_continue_as_new_events, 50);
        assert_eq!(l.log_level.as_deref(), Some("warn"));
        assert!(l.config.time_skipping_locked);
        assert!(l.notes.iter().any(|n| n.contains("--some-new-flag")));
    }

    #[test]
    fn java_test_server_form_starts_locked_unless_asked() {
        let locked = parse(&["7555"]).unwrap();
        assert_eq!(locked.config.port, 7555);
        assert!(locked.config.time_skipping_locked);
        assert!(!parse(&["7555", "--enable-time-skipping"]).unwrap().config.time_skipping_locked);
    }

    #[test]
    fn bad_values_name_the_flag() {
        let e = parse(&["--port", "nope"]).unwrap_err();
        assert!(e.contains("--port"), "{e}");
        let e = parse(&["--search-attribute", "X=Blob"]).unwrap_err();
        assert!(e.contains("--search-attribute"), "{e}");
        assert!(parse(&["server", "stop"]).is_err());
    }
}
