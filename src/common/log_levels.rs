//! Log levels changed at run time (Kafka's BROKER_LOGGER config resource): a logger is
//! a module path (`ferrolog::replication`) or `root`, its level one of Kafka's names.
//! `main` installs the function that swaps the process's filter; until then (tests,
//! tools) levels are only remembered. Not persisted, as in Kafka: a restart starts from
//! `RUST_LOG` again.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Rebuilds the process's log filter from a directive string (`info,ferrolog::x=debug`).
pub type Reload = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

static RELOAD: OnceLock<Reload> = OnceLock::new();
static LEVELS: Mutex<Option<Levels>> = Mutex::new(None);

struct Levels {
    base: String,
    loggers: BTreeMap<String, String>,
}

/// The name of the whole process's level.
pub const ROOT: &str = "root";

/// Installs the filter swap; `base` is the filter the process started with.
pub fn install(base: &str, reload: Reload) {
    let _ = RELOAD.set(reload);
    *LEVELS.lock() = Some(Levels {
        base: base.to_string(),
        loggers: BTreeMap::new(),
    });
}

/// Kafka's level names, as tracing's.
fn tracing_level(level: &str) -> Option<&'static str> {
    Some(match level.to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" => "warn",
        "ERROR" | "FATAL" => "error",
        "OFF" => "off",
        _ => return None,
    })
}

/// Whether `level` is a level Kafka names.
pub fn valid_level(level: &str) -> bool {
    tracing_level(level).is_some()
}

/// Whether `logger` can name a logger: `root` or a Rust path.
pub fn valid_logger(logger: &str) -> bool {
    logger == ROOT
        || (!logger.is_empty()
            && logger
                .split("::")
                .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')))
}

/// Sets (`Some`) or resets (`None`) loggers' levels, all or none.
pub fn apply(changes: &[(String, Option<String>)]) -> Result<(), String> {
    let mut guard = LEVELS.lock();
    let levels = guard.get_or_insert_with(|| Levels {
        base: "info".into(),
        loggers: BTreeMap::new(),
    });
    let mut loggers = levels.loggers.clone();
    for (logger, level) in changes {
        if !valid_logger(logger) {
            return Err(format!("`{logger}` is not a logger name"));
        }
        match level {
            Some(level) => {
                let Some(level) = tracing_level(level) else {
                    return Err(format!(
                        "`{level}` is not a log level (TRACE, DEBUG, INFO, WARN, ERROR, FATAL, OFF)"
                    ));
                };
                loggers.insert(logger.clone(), level.to_string());
            }
            None => {
                loggers.remove(logger);
            }
        }
    }
    let directives = directives(&levels.base, &loggers);
    if let Some(reload) = RELOAD.get() {
        reload(&directives)?;
    }
    levels.loggers = loggers;
    Ok(())
}

/// The filter for a base and the loggers set over it (`root` replaces the base level).
fn directives(base: &str, loggers: &BTreeMap<String, String>) -> String {
    let mut parts: Vec<String> = Vec::new();
    match loggers.get(ROOT) {
        Some(level) => {
            parts.push(level.clone());
            // The base's per-module directives stay (openraft's silence).
            parts.extend(
                base.split(',')
                    .filter(|part| part.contains('='))
                    .map(str::to_string),
            );
        }
        None => parts.push(base.to_string()),
    }
    parts.extend(
        loggers
            .iter()
            .filter(|(logger, _)| logger.as_str() != ROOT)
            .map(|(logger, level)| format!("{logger}={level}")),
    );
    parts.join(",")
}

/// The loggers with a level set at run time, and `root`, with their levels (upper case).
pub fn levels() -> Vec<(String, String)> {
    let guard = LEVELS.lock();
    let (base, loggers) = match guard.as_ref() {
        Some(levels) => (levels.base.clone(), levels.loggers.clone()),
        None => ("info".to_string(), BTreeMap::new()),
    };
    let root = loggers.get(ROOT).cloned().unwrap_or_else(|| {
        base.split(',')
            .find(|part| !part.contains('='))
            .unwrap_or("info")
            .to_string()
    });
    let mut out = vec![(ROOT.to_string(), root.to_ascii_uppercase())];
    out.extend(
        loggers
            .into_iter()
            .filter(|(logger, _)| logger != ROOT)
            .map(|(logger, level)| (logger, level.to_ascii_uppercase())),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_put_loggers_over_the_base() {
        let mut loggers = BTreeMap::new();
        assert_eq!(directives("info,openraft=off", &loggers), "info,openraft=off");
        loggers.insert("ferrolog::replication".to_string(), "debug".to_string());
        assert_eq!(
            directives("info,openraft=off", &loggers),
            "info,openraft=off,ferrolog::replication=debug"
        );
        loggers.insert(ROOT.to_string(), "warn".to_string());
        assert_eq!(
            directives("info,openraft=off", &loggers),
            "warn,openraft=off,ferrolog::replication=debug"
        );
    }

    #[test]
    fn names_and_levels_are_checked() {
        assert!(valid_logger("root") && valid_logger("ferrolog::log::segment"));
        assert!(!valid_logger("a=b") && !valid_logger("") && !valid_logger("x::"));
        assert!(valid_level("DEBUG") && valid_level("fatal") && !valid_level("LOUD"));
    }
}
