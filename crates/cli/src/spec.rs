//! Service files: which programs `zerorpc --server` exposes, read from TOML
//! (or YAML for `.yaml`/`.yml`) into [`RawSpec`], then checked into
//! [`ServiceSpec`] with errors naming the file and the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::args::MAX_LIMIT;

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    name: Option<String>,
    #[serde(default)]
    methods: BTreeMap<String, RawMethod>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMethod {
    command: Vec<String>,
    description: Option<String>,
    #[serde(default)]
    stream: bool,
    timeout: Option<f64>,
    max_concurrent: Option<i64>,
    args: Option<Vec<String>>,
}

/// A checked service file.
#[derive(Clone, Debug)]
pub(crate) struct ServiceSpec {
    pub(crate) name: String,
    pub(crate) methods: Vec<MethodSpec>,
}

/// One method: the program it runs and how.
#[derive(Clone, Debug)]
pub(crate) struct MethodSpec {
    pub(crate) name: String,
    /// Program and fixed arguments; the call's arguments are appended.
    pub(crate) command: Vec<String>,
    pub(crate) description: Option<String>,
    pub(crate) stream: bool,
    pub(crate) timeout: Option<Duration>,
    pub(crate) max_concurrent: Option<usize>,
    /// Argument names shown by introspection, if the file gives them.
    pub(crate) args: Option<Vec<String>>,
}

/// A service file that cannot be used; the message names file and key.
#[derive(Debug)]
pub(crate) struct SpecError(pub(crate) String);

/// Reads and checks a service file.
pub(crate) fn load(path: &Path) -> Result<ServiceSpec, SpecError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| SpecError(format!("cannot read service file {shown}: {e}")))?;
    let yaml = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    );
    let raw: RawSpec = if yaml {
        serde_norway::from_str(&text).map_err(|e| SpecError(format!("{shown}: {e}")))?
    } else {
        toml::from_str(&text)
            .map_err(|e| SpecError(format!("{shown}: {}", one_paragraph(&e.to_string()))))?
    };
    let default_name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "service".to_owned());
    check(raw, path, default_name)
}

/// toml's errors span several lines (with a source excerpt); keep them
/// readable on one screen but unchanged in content.
fn one_paragraph(message: &str) -> String {
    message.trim_end().to_owned()
}

fn check(raw: RawSpec, path: &Path, default_name: String) -> Result<ServiceSpec, SpecError> {
    let shown = path.display();
    let fail = |key: &str, what: String| SpecError(format!("{shown}: {key}: {what}"));
    let name = raw.name.unwrap_or(default_name);
    if name.trim().is_empty() {
        return Err(fail("name", "must not be empty".to_owned()));
    }
    if raw.methods.is_empty() {
        return Err(SpecError(format!(
            "{shown}: no methods: add at least one [methods.NAME] table with a command"
        )));
    }
    let mut methods = Vec::with_capacity(raw.methods.len());
    for (method, m) in raw.methods {
        let key = |field: &str| format!("methods.{method}.{field}");
        if method.is_empty()
            || method.starts_with('_')
            || method.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(fail(
                &format!("methods.{method:?}"),
                "method names must not be empty, start with '_' (reserved for _zerorpc_*) or contain spaces".to_owned(),
            ));
        }
        let Some(program) = m.command.first() else {
            return Err(fail(
                &key("command"),
                "must name a program, e.g. command = [\"uptime\"]".to_owned(),
            ));
        };
        if program.is_empty() {
            return Err(fail(
                &key("command"),
                "the program name is empty".to_owned(),
            ));
        }
        if m.command.iter().any(|a| a.contains('\0')) {
            return Err(fail(
                &key("command"),
                "arguments cannot contain NUL characters".to_owned(),
            ));
        }
        if find_program(program).is_none() {
            return Err(fail(
                &key("command"),
                format!("program {program:?} not found (not an executable file, nor in PATH)"),
            ));
        }
        let timeout = match m.timeout {
            None => None,
            Some(t) if t.is_finite() && t > 0.0 && t <= 1e9 => Some(Duration::from_secs_f64(t)),
            Some(t) => {
                return Err(fail(
                    &key("timeout"),
                    format!("must be a positive number of seconds, got {t}"),
                ));
            }
        };
        let max_concurrent = match m.max_concurrent {
            None => None,
            Some(n) => match usize::try_from(n) {
                Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => Some(limit),
                _ => {
                    return Err(fail(
                        &key("max_concurrent"),
                        format!("must be between 1 and {MAX_LIMIT}, got {n}"),
                    ));
                }
            },
        };
        methods.push(MethodSpec {
            name: method,
            command: m.command,
            description: m.description.filter(|d| !d.trim().is_empty()),
            stream: m.stream,
            timeout,
            max_concurrent,
            args: m.args,
        });
    }
    Ok(ServiceSpec { name, methods })
}

/// The program a command runs: a path as given, or the first match in PATH.
fn find_program(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path = PathBuf::from(program);
        return executable(&path).then_some(path);
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
}

/// A command line as a shell would need it typed, for help texts.
pub(crate) fn shell_words(command: &[String]) -> String {
    command
        .iter()
        .map(|word| {
            let plain = !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+%@".contains(c));
            if plain {
                word.clone()
            } else {
                format!("'{}'", word.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ServiceSpec, SpecError> {
        let raw: RawSpec = toml::from_str(text).map_err(|e| SpecError(e.to_string()))?;
        check(raw, Path::new("tools.toml"), "tools".to_owned())
    }

    #[test]
    fn a_good_file() {
        let spec = parse(
            "[methods.up]\ncommand = [\"uptime\"]\ndescription = \"Up.\"\n\
             [methods.grep]\ncommand = [\"grep\", \"-n\"]\nstream = true\ntimeout = 10\nmax_concurrent = 4\n",
        )
        .expect("valid");
        assert_eq!(spec.name, "tools");
        let grep = spec
            .methods
            .iter()
            .find(|m| m.name == "grep")
            .expect("grep");
        assert!(grep.stream);
        assert_eq!(grep.timeout, Some(Duration::from_secs(10)));
        assert_eq!(grep.max_concurrent, Some(4));
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("[methods.x]\ncommand = []\n", "methods.x.command"),
            (
                "[methods.x]\ncommand = [\"true\"]\ntimeout = 0\n",
                "methods.x.timeout",
            ),
            (
                "[methods.x]\ncommand = [\"true\"]\nmax_concurrent = 0\n",
                "methods.x.max_concurrent",
            ),
            (
                "[methods.x]\ncommand = [\"no-such-program-zerorpc\"]\n",
                "methods.x.command",
            ),
            ("[methods._x]\ncommand = [\"true\"]\n", "_x"),
            ("[methods.x]\ncomand = [\"true\"]\n", "comand"),
            ("name = \"n\"\n", "no methods"),
        ];
        for (text, key) in cases {
            let err = parse(text).expect_err(text).0;
            assert!(err.contains(key), "{text:?}: {err}");
        }
    }

    #[test]
    fn max_concurrent_beyond_what_a_semaphore_holds_is_refused() {
        let text = format!(
            "[methods.x]\ncommand = [\"true\"]\nmax_concurrent = {}\n",
            i64::MAX
        );
        let err = parse(&text).expect_err("an unusable limit").0;
        assert!(err.contains("methods.x.max_concurrent"), "{err}");
        assert!(err.contains("must be between 1 and"), "{err}");
    }

    #[test]
    fn quoting() {
        assert_eq!(
            shell_words(&["grep".into(), "-n".into(), "a b".into(), "it's".into()]),
            "grep -n 'a b' 'it'\\''s'"
        );
    }
}
