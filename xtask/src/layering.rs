//! `cargo xtask layering`: the crate layering, checked mechanically.
//!
//! The rules say which packages must stay out of a crate's dependency graph
//! (normal and build dependencies, transitively; dev-dependencies do not
//! ship). They are checked against `cargo metadata`'s resolved graph rather
//! than with `cargo tree -i`, whose non-zero exit means "not in the graph" and
//! "something else went wrong" alike.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::path::Path;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::run::{cargo, display};

/// Only these workspace members may use the application-level crates.
const APPLICATIONS: &[&str] = &["zerorpc-cli", "xtask", "zerorpc-load"];

/// Crates reserved to [`APPLICATIONS`].
const APPLICATION_CRATES: &[&str] = &["clap", "anyhow"];

/// Which crate must not (transitively) depend on which, and why.
const RULES: &[Rule] = &[
    Rule {
        package: "zerorpc-endpoint",
        forbidden: &[
            "zmq",
            "zmq-sys",
            "tokio",
            "zerorpc-wire",
            "zerorpc-transport",
            "zerorpc",
        ],
        why: "endpoint is a parser only: shared by every layer, it depends on none",
    },
    Rule {
        package: "zerorpc-wire",
        forbidden: &["zmq", "zmq-sys", "tokio", "zerorpc-transport", "zerorpc"],
        why: "wire is the codec only: no I/O, no runtime",
    },
    Rule {
        package: "zerorpc-transport",
        forbidden: &["zerorpc", "tokio", "redis", "hickory-resolver"],
        why: "transport knows frames and heartbeats, not RPC, discovery or tracing",
    },
    Rule {
        package: "zerorpc",
        forbidden: &[
            "redis",
            "hickory-resolver",
            "zerorpc-discovery",
            "zerorpc-tracing-collector",
            "zerorpc-hub",
            "clap",
            "anyhow",
        ],
        why: "core knows nothing of Redis, DNS, the hub or command lines",
    },
    Rule {
        package: "zerorpc-hub",
        forbidden: &["zerorpc", "redis", "hickory-resolver"],
        why: "the hub routes events below the RPC layer",
    },
    // Of the other published crates, wire, transport, macros and core are
    // below zerorpc-load (cargo refuses the cycle) and the hub must not use
    // core. (`cargo publish` also refuses its path-only dependency.)
    Rule {
        package: "zerorpc-cli",
        forbidden: &["zerorpc-load"],
        why: "the load generators are unpublished test and benchmark tools",
    },
];

/// One layering rule: `package` must not depend on any of `forbidden`.
#[derive(Debug)]
struct Rule {
    package: &'static str,
    forbidden: &'static [&'static str],
    why: &'static str,
}

/// A forbidden dependency found in the graph.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Violation {
    /// The package names from the offender to the forbidden crate.
    pub(crate) path: Vec<String>,
    pub(crate) why: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.path.join(" -> "), self.why)
    }
}

/// Prints the rules, checks the workspace of `manifest` and fails on a violation.
pub(crate) fn run(manifest: &Path) -> anyhow::Result<()> {
    println!("layering rules (normal and build dependencies, transitively):");
    for rule in RULES {
        println!(
            "  {} must not depend on {} ({})",
            rule.package,
            rule.forbidden.join(", "),
            rule.why
        );
    }
    println!(
        "  only {} may depend on {}",
        list(APPLICATIONS, "and"),
        APPLICATION_CRATES.join(" or ")
    );
    let report = check(manifest)?;
    for package in &report.absent {
        println!("  note: {package} is not in the workspace yet; its rule was skipped");
    }
    if report.violations.is_empty() {
        println!("layering: ok");
        return Ok(());
    }
    for violation in &report.violations {
        eprintln!("layering violation: {violation}");
    }
    bail!("{} layering violation(s)", report.violations.len())
}

/// What [`check`] found.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) violations: Vec<Violation>,
    /// Rule subjects that are not workspace members.
    pub(crate) absent: Vec<String>,
}

/// Checks the workspace whose root manifest is `manifest` against the rules.
pub(crate) fn check(manifest: &Path) -> anyhow::Result<Report> {
    let mut command = cargo();
    command
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(manifest);
    let output = command
        .output()
        .with_context(|| format!("cannot run `{}`", display(&command)))?;
    if !output.status.success() {
        bail!(
            "`{}` failed ({}):\n{}",
            display(&command),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let metadata: Value =
        serde_json::from_slice(&output.stdout).context("parsing `cargo metadata` output")?;
    let graph = Graph::from_metadata(&metadata)?;
    Ok(check_graph(&graph))
}

fn check_graph(graph: &Graph) -> Report {
    let mut violations = Vec::new();
    let mut absent = Vec::new();
    for rule in RULES {
        match graph.member(rule.package) {
            Some(id) => {
                for forbidden in rule.forbidden {
                    if let Some(path) = graph.path_to(id, forbidden) {
                        violations.push(Violation {
                            path,
                            why: rule.why.to_owned(),
                        });
                    }
                }
            }
            None => absent.push(rule.package.to_owned()),
        }
    }
    for (name, id) in &graph.members {
        if APPLICATIONS.contains(&name.as_str()) {
            continue;
        }
        for forbidden in APPLICATION_CRATES {
            let already = violations.iter().any(|v| {
                v.path.first() == Some(name) && v.path.last().map(String::as_str) == Some(forbidden)
            });
            if already {
                continue;
            }
            if let Some(path) = graph.path_to(id, forbidden) {
                violations.push(Violation {
                    path,
                    why: format!("only {} may use {forbidden}", list(APPLICATIONS, "and")),
                });
            }
        }
    }
    Report { violations, absent }
}

/// `items` as English: "a", "a and b", "a, b and c".
fn list(items: &[&str], conjunction: &str) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} {conjunction} {last}", init.join(", ")),
    }
}

/// The resolved dependency graph, restricted to normal and build edges.
struct Graph {
    /// Workspace members by package name, sorted by name.
    members: Vec<(String, String)>,
    names: HashMap<String, String>,
    edges: HashMap<String, Vec<String>>,
}

impl Graph {
    fn from_metadata(metadata: &Value) -> anyhow::Result<Graph> {
        let packages = metadata["packages"]
            .as_array()
            .context("`cargo metadata`: no packages")?;
        let names: HashMap<String, String> = packages
            .iter()
            .filter_map(|p| Some((p["id"].as_str()?.to_owned(), p["name"].as_str()?.to_owned())))
            .collect();
        let mut members: Vec<(String, String)> = metadata["workspace_members"]
            .as_array()
            .context("`cargo metadata`: no workspace_members")?
            .iter()
            .filter_map(|id| {
                let id = id.as_str()?;
                Some((names.get(id)?.clone(), id.to_owned()))
            })
            .collect();
        members.sort();
        let nodes = metadata["resolve"]["nodes"]
            .as_array()
            .context("`cargo metadata`: no resolve graph")?;
        let mut edges = HashMap::new();
        for node in nodes {
            let id = node["id"].as_str().context("resolve node without id")?;
            let deps = node["deps"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|dep| ships(dep))
                .filter_map(|dep| dep["pkg"].as_str().map(str::to_owned))
                .collect();
            edges.insert(id.to_owned(), deps);
        }
        Ok(Graph {
            members,
            names,
            edges,
        })
    }

    fn member(&self, name: &str) -> Option<&String> {
        self.members
            .iter()
            .find(|(member, _)| member == name)
            .map(|(_, id)| id)
    }

    /// The shortest chain of package names from `from` to a package named
    /// `target`, if the graph has one. Breadth-first over a finite graph
    /// with a visited set, so it ends.
    fn path_to(&self, from: &str, target: &str) -> Option<Vec<String>> {
        let mut parent: HashMap<&str, &str> = HashMap::new();
        let mut seen = HashSet::from([from]);
        let mut queue = VecDeque::from([from]);
        while let Some(id) = queue.pop_front() {
            if id != from && self.names.get(id).map(String::as_str) == Some(target) {
                let mut path = vec![id];
                while let Some(previous) = parent.get(path[path.len() - 1]) {
                    path.push(previous);
                }
                path.reverse();
                return Some(
                    path.iter()
                        .map(|id| {
                            self.names
                                .get(*id)
                                .cloned()
                                .unwrap_or_else(|| id.to_string())
                        })
                        .collect(),
                );
            }
            for next in self.edges.get(id).into_iter().flatten() {
                if seen.insert(next) {
                    parent.insert(next, id);
                    queue.push_back(next);
                }
            }
        }
        None
    }
}

/// Whether a resolve edge is a normal or build dependency (`kind` null or
/// "build"), as opposed to a dev-dependency only.
fn ships(dep: &Value) -> bool {
    match dep["dep_kinds"].as_array() {
        Some(kinds) => kinds
            .iter()
            .any(|k| k["kind"].is_null() || k["kind"].as_str() == Some("build")),
        // Older cargo without dep_kinds: count the edge, erring on the safe side.
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A throwaway workspace of path-only packages, removed on drop.
    struct Workspace {
        root: PathBuf,
    }

    impl Workspace {
        /// `packages`: (name, normal deps, dev deps).
        fn new(packages: &[(&str, &[&str], &[&str])]) -> Workspace {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let root = std::env::temp_dir().join(format!(
                "xtask-layering-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&root);
            let members: Vec<String> = packages.iter().map(|(n, _, _)| format!("{n:?}")).collect();
            write(
                &root.join("Cargo.toml"),
                &format!(
                    "[workspace]\nresolver = \"3\"\nmembers = [{}]\n",
                    members.join(", ")
                ),
            );
            for (name, deps, dev_deps) in packages {
                let line = |dep: &&str| format!("{dep} = {{ path = \"../{dep}\" }}\n");
                let mut manifest = format!(
                    "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\n"
                );
                manifest.extend(deps.iter().map(line));
                manifest.push_str("\n[dev-dependencies]\n");
                manifest.extend(dev_deps.iter().map(line));
                write(&root.join(name).join("Cargo.toml"), &manifest);
                write(&root.join(name).join("src/lib.rs"), "//! Test package.\n");
            }
            Workspace { root }
        }

        fn check(&self) -> Report {
            check(&self.root.join("Cargo.toml")).expect("cargo metadata on the test workspace")
        }
    }

    impl Drop for Workspace {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.root);
        }
    }

    fn write(path: &Path, contents: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
    }

    fn paths(report: &Report) -> Vec<String> {
        report
            .violations
            .iter()
            .map(|v| v.path.join(" -> "))
            .collect()
    }

    #[test]
    fn forbidden_dependency_is_reported() {
        let ws = Workspace::new(&[("zerorpc-wire", &["tokio"], &[]), ("tokio", &[], &[])]);
        let report = ws.check();
        assert_eq!(paths(&report), ["zerorpc-wire -> tokio"]);
        assert!(report.violations[0].why.contains("no I/O"));
    }

    #[test]
    fn transitive_dependency_is_reported_with_its_path() {
        let ws = Workspace::new(&[
            ("zerorpc", &["helper"], &[]),
            ("helper", &["redis"], &[]),
            ("redis", &[], &[]),
        ]);
        assert_eq!(paths(&ws.check()), ["zerorpc -> helper -> redis"]);
    }

    #[test]
    fn allowed_and_dev_only_dependencies_pass() {
        let ws = Workspace::new(&[
            ("zerorpc-wire", &["rmp"], &["tokio"]),
            ("zerorpc-transport", &["zerorpc-wire"], &[]),
            ("rmp", &[], &[]),
            ("tokio", &[], &[]),
        ]);
        let report = ws.check();
        assert_eq!(paths(&report), Vec::<String>::new());
        // Rules about packages not (yet) in the workspace are skipped, not failed.
        assert_eq!(
            report.absent,
            ["zerorpc-endpoint", "zerorpc", "zerorpc-hub", "zerorpc-cli"]
        );
    }

    #[test]
    fn only_applications_may_use_clap_and_anyhow() {
        let ws = Workspace::new(&[
            ("zerorpc-cli", &["clap", "anyhow"], &[]),
            ("xtask", &["anyhow"], &[]),
            ("zerorpc-discovery", &["anyhow"], &[]),
            ("clap", &[], &[]),
            ("anyhow", &[], &[]),
        ]);
        let report = ws.check();
        assert_eq!(paths(&report), ["zerorpc-discovery -> anyhow"]);
        assert!(
            report.violations[0]
                .why
                .contains("only zerorpc-cli, xtask and zerorpc-load")
        );
    }

    #[test]
    fn core_using_anyhow_is_reported_once() {
        let ws = Workspace::new(&[("zerorpc", &["anyhow"], &[]), ("anyhow", &[], &[])]);
        assert_eq!(paths(&ws.check()), ["zerorpc -> anyhow"]);
    }

    #[test]
    fn broken_manifest_is_an_error_not_a_pass() {
        let ws = Workspace::new(&[("zerorpc-wire", &["missing"], &[])]);
        let error = check(&ws.root.join("Cargo.toml")).unwrap_err();
        assert!(error.to_string().contains("cargo metadata"), "{error:#}");
    }

    #[test]
    fn every_rule_names_distinct_packages() {
        let subjects: HashSet<&str> = RULES.iter().map(|r| r.package).collect();
        assert_eq!(subjects.len(), RULES.len());
        for rule in RULES {
            assert!(!rule.forbidden.contains(&rule.package), "{rule:?}");
            assert!(!rule.why.is_empty());
        }
    }
}
