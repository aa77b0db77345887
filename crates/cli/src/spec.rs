//! Service files: which programs `zerorpc --server` exposes, read from TOML
//! (or YAML for `.yaml`/`.yml`) into [`RawSpec`], then checked into
//! [`ServiceSpec`] with errors naming the file and the key. What a caller
//! may pass to a program (how many arguments, their schema, whether they
//! may look like options) is checked here too, by [`MethodSpec::argv`],
//! before anything runs.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;
use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use zerorpc::{RemoteError, Value};

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
    args: Option<Vec<RawArg>>,
    options: Option<String>,
}

/// One entry of a method's `args`: a name alone, or a table with a schema.
#[derive(Debug)]
enum RawArg {
    Name(String),
    Schema(RawSchema),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchema {
    name: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    pattern: Option<String>,
    values: Option<Vec<String>>,
}

// By hand rather than `#[serde(untagged)]`, whose error ("did not match any
// variant") would hide which key of the table is wrong.
impl<'de> Deserialize<'de> for RawArg {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ArgVisitor;
        impl<'de> Visitor<'de> for ArgVisitor {
            type Value = RawArg;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an argument name, or a table with name, type, pattern or values")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<RawArg, E> {
                Ok(RawArg::Name(name.to_owned()))
            }
            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<RawArg, M::Error> {
                RawSchema::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawArg::Schema)
            }
        }
        deserializer.deserialize_any(ArgVisitor)
    }
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
    /// Program and fixed arguments as written, placeholders included.
    pub(crate) command: Vec<String>,
    /// `command[1..]` with its placeholders found; the call's arguments
    /// go where [`Word::Rest`] is (appended when the file has none).
    words: Vec<Word>,
    pub(crate) description: Option<String>,
    pub(crate) stream: bool,
    pub(crate) timeout: Option<Duration>,
    pub(crate) max_concurrent: Option<usize>,
    /// The arguments the file declares: names (shown by introspection) and
    /// schemas; when given, a call must pass exactly these.
    pub(crate) args: Option<Vec<ArgSpec>>,
    /// `options = "allow"`: caller arguments may start with `-`.
    allow_options: bool,
}

/// An argument of the command after the program.
#[derive(Clone, Debug, PartialEq)]
enum Word {
    Fixed(String),
    /// `{N}`: the caller's argument N (1-based).
    Arg(usize),
    /// `{args}`: every caller argument no `{N}` placed, in order.
    Rest,
}

/// What a declared argument accepts.
#[derive(Clone, Debug)]
pub(crate) struct ArgSpec {
    pub(crate) name: String,
    kind: ArgType,
    pattern: Option<Regex>,
    values: Option<Vec<String>>,
}

/// The `type` of a declared argument, checked on the text the program
/// receives (the `zerorpc` command line sends its arguments as text).
#[derive(Clone, Copy, Debug, PartialEq)]
enum ArgType {
    Any,
    String,
    Integer,
    Number,
    Boolean,
}

impl ArgType {
    fn parse(name: &str) -> Option<ArgType> {
        Some(match name {
            "string" => ArgType::String,
            "integer" => ArgType::Integer,
            "number" => ArgType::Number,
            "boolean" => ArgType::Boolean,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            ArgType::Any => "any",
            ArgType::String => "a string",
            ArgType::Integer => "an integer",
            ArgType::Number => "a number",
            ArgType::Boolean => "a boolean",
        }
    }

    fn accepts(self, text: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(text) else {
            return self == ArgType::Any;
        };
        match self {
            ArgType::Any | ArgType::String => true,
            ArgType::Integer => text.parse::<i64>().is_ok() || text.parse::<u64>().is_ok(),
            ArgType::Number => text.parse::<f64>().is_ok_and(f64::is_finite),
            ArgType::Boolean => matches!(text, "true" | "false"),
        }
    }
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
        let allow_options = match m.options.as_deref() {
            None | Some("refuse") => false,
            Some("allow") => true,
            Some(other) => {
                return Err(fail(
                    &key("options"),
                    format!("must be \"refuse\" (the default) or \"allow\", got {other:?}"),
                ));
            }
        };
        let args = match m.args {
            None => None,
            Some(raw) => Some(
                raw.into_iter()
                    .enumerate()
                    .map(|(i, arg)| {
                        arg_spec(arg).map_err(|e| fail(&format!("{}[{i}]", key("args")), e))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let words =
            words(&m.command[1..], args.as_deref()).map_err(|e| fail(&key("command"), e))?;
        methods.push(MethodSpec {
            name: method,
            command: m.command,
            words,
            description: m.description.filter(|d| !d.trim().is_empty()),
            stream: m.stream,
            timeout,
            max_concurrent,
            args,
            allow_options,
        });
    }
    Ok(ServiceSpec { name, methods })
}

/// A declared argument, checked.
fn arg_spec(raw: RawArg) -> Result<ArgSpec, String> {
    let schema = match raw {
        RawArg::Name(name) => RawSchema {
            name,
            kind: None,
            pattern: None,
            values: None,
        },
        RawArg::Schema(schema) => schema,
    };
    if schema.name.trim().is_empty() {
        return Err("the argument's name must not be empty".to_owned());
    }
    let kind = match schema.kind.as_deref() {
        None => ArgType::Any,
        Some(name) => ArgType::parse(name).ok_or_else(|| {
            format!("type must be string, integer, number or boolean, got {name:?}")
        })?,
    };
    // Anchored: the whole argument must match, not a part of it.
    let pattern = match schema.pattern {
        None => None,
        Some(p) => Some(
            Regex::new(&format!("^(?:{p})$"))
                .map_err(|e| format!("pattern {p:?} is not a valid regular expression: {e}"))?,
        ),
    };
    if schema.values.as_ref().is_some_and(Vec::is_empty) {
        return Err("values must list at least one value".to_owned());
    }
    Ok(ArgSpec {
        name: schema.name,
        kind,
        pattern,
        values: schema.values,
    })
}

/// The command's arguments with their placeholders, checked against the
/// declared arguments: each must have a place, and each `{N}` an argument.
fn words(command: &[String], args: Option<&[ArgSpec]>) -> Result<Vec<Word>, String> {
    let mut words: Vec<Word> = command
        .iter()
        .map(|word| match word.as_str() {
            "{args}" => Word::Rest,
            _ => match word
                .strip_prefix('{')
                .and_then(|w| w.strip_suffix('}'))
                .and_then(|n| n.parse::<usize>().ok())
            {
                Some(n) => Word::Arg(n),
                None => Word::Fixed(word.clone()),
            },
        })
        .collect();
    let placed = placed(&words);
    let rests = words.iter().filter(|w| **w == Word::Rest).count();
    if rests > 1 {
        return Err("{args} may appear only once".to_owned());
    }
    if placed.contains(&0) {
        return Err("placeholders count from {1}".to_owned());
    }
    if let Some(args) = args {
        if let Some(n) = placed.iter().find(|n| **n > args.len()) {
            return Err(format!(
                "{{{n}}} refers to argument {n}, but args declares {}",
                args.len()
            ));
        }
        if rests == 0 && !placed.is_empty() {
            if let Some((i, arg)) = args
                .iter()
                .enumerate()
                .find(|(i, _)| !placed.contains(&(i + 1)))
            {
                return Err(format!(
                    "argument {} ({}) has no place: add {{{}}} or {{args}}",
                    i + 1,
                    arg.name,
                    i + 1
                ));
            }
        }
    }
    if placed.is_empty() && rests == 0 {
        words.push(Word::Rest);
    }
    Ok(words)
}

/// The argument numbers the `{N}` placeholders of `words` name.
fn placed(words: &[Word]) -> Vec<usize> {
    words
        .iter()
        .filter_map(|w| match w {
            Word::Arg(n) => Some(*n),
            _ => None,
        })
        .collect()
}

impl MethodSpec {
    /// The command line for help texts, with `ARGS...` where the call's
    /// arguments go when the file has no placeholder.
    pub(crate) fn usage(&self) -> String {
        let line = shell_words(&self.command);
        if self.command.len() == self.words.len() {
            // `words` got the implicit Rest appended.
            format!("{line} ARGS...")
        } else {
            line
        }
    }

    /// The command's arguments after the program for one call: the caller's
    /// `args` checked (count, schema, options) and put in their places.
    pub(crate) fn argv(&self, args: Vec<Value>) -> Result<Vec<OsString>, RemoteError> {
        let method = &self.name;
        let type_error = |message: String| RemoteError::with_summary("TypeError", message);
        let given = args.len();
        let placed = placed(&self.words);
        let highest = placed.iter().copied().max().unwrap_or(0);
        let has_rest = self.words.contains(&Word::Rest);
        let (least, most) = match &self.args {
            Some(declared) => (declared.len(), Some(declared.len())),
            None if has_rest => (highest, None),
            None => (highest, Some(highest)),
        };
        let plural = |n: usize| if n == 1 { "argument" } else { "arguments" };
        if given < least {
            let missing = match &self.args {
                Some(declared) => declared[given..]
                    .iter()
                    .map(|a| format!("'{}'", a.name))
                    .collect::<Vec<_>>()
                    .join(", "),
                None => format!("{} more", least - given),
            };
            return Err(type_error(format!(
                "{method}() missing {} required positional {}: {missing}",
                least - given,
                plural(least - given)
            )));
        }
        if let Some(most) = most.filter(|most| given > *most) {
            return Err(type_error(format!(
                "{method}() takes {most} positional {} but {given} were given",
                plural(most)
            )));
        }
        let mut texts = Vec::with_capacity(given);
        for (i, value) in args.into_iter().enumerate() {
            let declared = self.args.as_ref().map(|a| &a[i]);
            let label = match declared {
                Some(a) => format!("argument {} ({})", i + 1, a.name),
                None => format!("argument {}", i + 1),
            };
            let text = argument_text(method, &label, value)?;
            if let Some(a) = declared {
                a.check(method, &label, &text)?;
            }
            // A value the file lists (it passed the check) was chosen by
            // the file's author, even if it looks like an option; anything
            // else from a caller must not.
            let explicit = declared.is_some_and(|a| a.values.is_some());
            if text.as_encoded_bytes().starts_with(b"-") && !self.allow_options && !explicit {
                return Err(type_error(format!(
                    "{method}() {label} must not start with '-': {:?} would be read as an \
                     option of the program (the method does not set options = \"allow\")",
                    text.to_string_lossy()
                )));
            }
            texts.push(Some(text));
        }
        let mut argv = Vec::with_capacity(self.words.len() + given);
        for word in &self.words {
            match word {
                Word::Fixed(text) => argv.push(OsString::from(text)),
                Word::Arg(n) => argv.push(texts[n - 1].clone().unwrap_or_default()),
                Word::Rest => argv.extend(
                    texts
                        .iter_mut()
                        .enumerate()
                        .filter(|(i, _)| !placed.contains(&(i + 1)))
                        .filter_map(|(_, t)| t.take()),
                ),
            }
        }
        Ok(argv)
    }
}

impl ArgSpec {
    fn check(&self, method: &str, label: &str, text: &OsString) -> Result<(), RemoteError> {
        let bytes = text.as_encoded_bytes();
        if !self.kind.accepts(bytes) {
            return Err(RemoteError::with_summary(
                "TypeError",
                format!(
                    "{method}() {label} must be {}, not {:?}",
                    self.kind.name(),
                    text.to_string_lossy()
                ),
            ));
        }
        let value_error = |why: String| {
            RemoteError::with_summary(
                "ValueError",
                format!("{method}() {label} {why}: {:?}", text.to_string_lossy()),
            )
        };
        if let Some(values) = &self.values {
            if !values.iter().any(|v| v.as_bytes() == bytes) {
                return Err(value_error(format!("must be one of {}", values.join(", "))));
            }
        }
        if let Some(pattern) = &self.pattern {
            let matches = std::str::from_utf8(bytes).is_ok_and(|t| pattern.is_match(t));
            if !matches {
                let shown = pattern.as_str();
                let shown = &shown[4..shown.len() - 2];
                return Err(value_error(format!("must match {shown}")));
            }
        }
        Ok(())
    }
}

/// A caller's argument as the program receives it: strings and binary data
/// as they are, numbers and booleans as text.
fn argument_text(method: &str, label: &str, value: Value) -> Result<OsString, RemoteError> {
    let text = match value {
        Value::String(s) => OsString::from_vec(s.into_bytes()),
        Value::Binary(b) => OsString::from_vec(b),
        Value::Integer(n) => OsString::from(n.to_string()),
        Value::F32(f) => OsString::from(crate::render::python_float(f64::from(f))),
        Value::F64(f) => OsString::from(crate::render::python_float(f)),
        Value::Boolean(b) => OsString::from(if b { "true" } else { "false" }),
        other => {
            let message =
                format!("{method}() {label} must be a string, number or boolean, not {other}");
            return Err(RemoteError::with_summary("TypeError", message));
        }
    };
    if text.as_encoded_bytes().contains(&0) {
        let message = format!("{method}() {label} contains a NUL byte");
        return Err(RemoteError::with_summary("ValueError", message));
    }
    Ok(text)
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

    fn method(text: &str) -> MethodSpec {
        parse(text).expect("valid").methods.remove(0)
    }

    fn strings(args: &[&str]) -> Vec<Value> {
        args.iter().map(|a| Value::from(*a)).collect()
    }

    fn argv(method: &MethodSpec, args: &[&str]) -> Result<Vec<String>, String> {
        method
            .argv(strings(args))
            .map(|argv| {
                argv.into_iter()
                    .map(|a| a.into_string().expect("UTF-8"))
                    .collect()
            })
            .map_err(|e| format!("{}: {}", e.name(), e.message()))
    }

    #[test]
    fn caller_arguments_that_look_like_options_are_refused_unless_allowed() {
        let find = method("[methods.find]\ncommand = [\"find\", \"/srv\", \"-name\"]\n");
        assert_eq!(argv(&find, &["*.txt"]).unwrap(), ["/srv", "-name", "*.txt"]);
        let err = argv(&find, &["*.txt", "-exec", "touch", "/tmp/x", ";"]).unwrap_err();
        assert!(
            err.starts_with("TypeError: find() argument 2 must not start with '-'"),
            "{err}"
        );
        assert!(err.contains("\"-exec\""), "{err}");
        let allowed = method(
            "[methods.find]\ncommand = [\"find\", \"/srv\", \"-name\"]\noptions = \"allow\"\n",
        );
        assert_eq!(
            argv(&allowed, &["*.txt", "-print"]).unwrap(),
            ["/srv", "-name", "*.txt", "-print"]
        );
    }

    #[test]
    fn declared_arguments_fix_the_count() {
        let grep = method("[methods.grep]\ncommand = [\"grep\"]\nargs = [\"pattern\", \"file\"]\n");
        assert_eq!(argv(&grep, &["a", "f"]).unwrap(), ["a", "f"]);
        assert_eq!(
            argv(&grep, &["a"]).unwrap_err(),
            "TypeError: grep() missing 1 required positional argument: 'file'"
        );
        assert_eq!(
            argv(&grep, &["a", "f", "g"]).unwrap_err(),
            "TypeError: grep() takes 2 positional arguments but 3 were given"
        );
    }

    #[test]
    fn placeholders_put_arguments_before_fixed_ones() {
        let find = method(
            "[methods.find]\ncommand = [\"find\", \"/srv\", \"-name\", \"{1}\", \"-type\", \"f\"]\n",
        );
        assert_eq!(
            argv(&find, &["*.txt"]).unwrap(),
            ["/srv", "-name", "*.txt", "-type", "f"]
        );
        // Without `args`, the placeholders fix the count.
        assert!(argv(&find, &[]).unwrap_err().contains("missing 1 required"));
        assert!(
            argv(&find, &["a", "b"])
                .unwrap_err()
                .contains("takes 1 positional argument but 2")
        );
        let copy = method(
            "[methods.copy]\ncommand = [\"cp\", \"--\", \"{args}\", \"{1}\"]\noptions = \"allow\"\n",
        );
        assert_eq!(
            argv(&copy, &["dir", "a", "b"]).unwrap(),
            ["--", "a", "b", "dir"]
        );
        assert!(argv(&copy, &[]).is_err());
        assert_eq!(
            method("[methods.x]\ncommand = [\"echo\", \"{1}\"]\n").usage(),
            "echo '{1}'"
        );
        assert_eq!(
            method("[methods.x]\ncommand = [\"echo\", \"-n\"]\n").usage(),
            "echo -n ARGS..."
        );
    }

    #[test]
    fn schemas_are_checked_before_anything_runs() {
        let tail = method(
            "[methods.tail]\ncommand = [\"tail\", \"-n\", \"{1}\", \"--\", \"{2}\"]\n\
             args = [{ name = \"lines\", type = \"integer\" }, \
                     { name = \"log\", values = [\"syslog\", \"auth.log\"] }]\n",
        );
        assert_eq!(
            argv(&tail, &["10", "syslog"]).unwrap(),
            ["-n", "10", "--", "syslog"]
        );
        assert_eq!(
            tail.argv(vec![Value::from(10), Value::from("auth.log")])
                .map(|a| a.len())
                .ok(),
            Some(4)
        );
        let err = argv(&tail, &["ten", "syslog"]).unwrap_err();
        assert_eq!(
            err,
            "TypeError: tail() argument 1 (lines) must be an integer, not \"ten\""
        );
        let err = argv(&tail, &["10", "/etc/shadow"]).unwrap_err();
        assert!(
            err.starts_with("ValueError: tail() argument 2 (log) must be one of syslog, auth.log"),
            "{err}"
        );
        let err = argv(&tail, &["-1", "syslog"]).unwrap_err();
        assert!(
            err.contains("argument 1 (lines) must not start with '-'"),
            "{err}"
        );
        let name = method(
            "[methods.n]\ncommand = [\"echo\"]\nargs = [{ name = \"n\", pattern = \"[a-z]+\" }]\n",
        );
        assert!(argv(&name, &["abc"]).is_ok());
        // Anchored: a match inside the argument is not enough.
        let err = argv(&name, &["abc; rm"]).unwrap_err();
        assert!(
            err.starts_with("ValueError: n() argument 1 (n) must match [a-z]+"),
            "{err}"
        );
        let flag = method(
            "[methods.ls]\ncommand = [\"ls\"]\nargs = [{ name = \"how\", values = [\"-l\", \"-a\"] }]\n",
        );
        assert_eq!(
            argv(&flag, &["-l"]).unwrap(),
            ["-l"],
            "a listed value is the file's choice"
        );
    }

    #[test]
    fn bad_schemas_and_placeholders_name_the_key() {
        let cases = [
            (
                "[methods.x]\ncommand = [\"echo\"]\nargs = [{ name = \"a\", type = \"float\" }]\n",
                "methods.x.args[0]: type must be string, integer, number or boolean",
            ),
            (
                "[methods.x]\ncommand = [\"echo\"]\nargs = [{ name = \"a\", pattern = \"(\" }]\n",
                "methods.x.args[0]: pattern \"(\" is not a valid regular expression",
            ),
            (
                "[methods.x]\ncommand = [\"echo\"]\nargs = [{ name = \"a\", kind = \"x\" }]\n",
                "kind",
            ),
            (
                "[methods.x]\ncommand = [\"echo\", \"{2}\"]\nargs = [\"a\"]\n",
                "methods.x.command: {2} refers to argument 2, but args declares 1",
            ),
            (
                "[methods.x]\ncommand = [\"echo\", \"{1}\"]\nargs = [\"a\", \"b\"]\n",
                "methods.x.command: argument 2 (b) has no place",
            ),
            (
                "[methods.x]\ncommand = [\"echo\", \"{0}\"]\n",
                "placeholders count from {1}",
            ),
            (
                "[methods.x]\ncommand = [\"echo\"]\noptions = \"yes\"\n",
                "methods.x.options: must be",
            ),
        ];
        for (text, expected) in cases {
            let err = parse(text).expect_err(text).0;
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(
            shell_words(&["grep".into(), "-n".into(), "a b".into(), "it's".into()]),
            "grep -n 'a b' 'it'\\''s'"
        );
    }
}
