//! `cargo xtask layering`: the crate layering, checked mechanically.
//!
//! Between workspace crates the rules are an allow-list ([`LAYERS`]): each
//! crate names the workspace crates it may depend on directly, and any other
//! edge fails, as does a workspace crate missing from the table. So a new
//! edge (the hub on the transport, say) or a new crate needs a deliberate
//! change here, and ARCHITECTURE.md's picture is drawn from this table.
//! External crates have deny rules ([`EXTERNAL_RULES`], [`APPLICATION_CRATES`]):
//! the set of external crates is open, so only the ones that would break a
//! layer's promise are named.
//!
//! Normal and build dependencies count, transitively (dev-dependencies do not
//! ship). They are read from `cargo metadata`'s resolved graph rather than
//! with `cargo tree -i`, whose non-zero exit means "not in the graph" and
//! "something else went wrong" alike.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::path::Path;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::run::{cargo, display};

/// Every workspace crate and the workspace crates it may depend on directly.
/// What a crate reaches through these edges it may reach transitively.
const LAYERS: &[Layer] = &[
    Layer {
        package: "zerorpc-endpoint",
        may_depend_on: &[],
        why: "the endpoint parser is shared by every layer, so it uses none",
    },
    Layer {
        package: "zerorpc-yaml",
        may_depend_on: &[],
        why: "reading YAML files is shared by the hub and discovery, below both",
    },
    Layer {
        package: "zerorpc-wire",
        may_depend_on: &[],
        why: "wire is the codec at the bottom of the stack",
    },
    Layer {
        package: "zerorpc-transport",
        may_depend_on: &["zerorpc-wire", "zerorpc-endpoint"],
        why: "transport knows frames and heartbeats, not RPC",
    },
    Layer {
        package: "zerorpc-macros",
        may_depend_on: &[],
        why: "the proc macro only generates code naming the core crate",
    },
    Layer {
        package: "zerorpc",
        may_depend_on: &[
            "zerorpc-wire",
            "zerorpc-endpoint",
            "zerorpc-transport",
            "zerorpc-macros",
        ],
        why: "core knows nothing of discovery, tracing, the hub or the tools",
    },
    Layer {
        package: "zerorpc-hub",
        may_depend_on: &["zerorpc-wire", "zerorpc-endpoint", "zerorpc-yaml"],
        why: "the hub routes events below the RPC layer and the transport",
    },
    Layer {
        package: "zerorpc-discovery",
        may_depend_on: &["zerorpc", "zerorpc-yaml"],
        why: "discovery plugs into the core crate's endpoint resolution",
    },
    Layer {
        package: "zerorpc-tracing-collector",
        may_depend_on: &["zerorpc"],
        why: "tracing plugs into the core crate's propagation and observers",
    },
    Layer {
        package: "zerorpc-cli",
        may_depend_on: &[
            "zerorpc",
            "zerorpc-hub",
            "zerorpc-discovery",
            "zerorpc-tracing-collector",
        ],
        why: "the binaries are built on the core crate, the hub, discovery \
              (`zerorpc announce`) and tracing (`zerorpc collector`, `tracedump`, \
              `top`) only; the load tools are unpublished",
    },
    Layer {
        package: "zerorpc-load",
        may_depend_on: &["zerorpc", "zerorpc-tracing-collector"],
        why: "the load tools are clients and servers of the core crate, traced to measure \
              what tracing costs",
    },
    Layer {
        package: "zerorpc-test-support",
        may_depend_on: &[],
        why: "unpublished test helpers, which other crates may take as dev-dependencies only",
    },
    Layer {
        package: "xtask",
        may_depend_on: &[],
        why: "xtask drives cargo and tools, not our crates",
    },
];

/// Only these workspace members may use the application-level crates.
const APPLICATIONS: &[&str] = &["zerorpc-cli", "xtask", "zerorpc-load"];

/// Crates reserved to [`APPLICATIONS`].
const APPLICATION_CRATES: &[&str] = &["clap", "anyhow"];

/// Which external crates must stay out of which workspace crate, and why.
const EXTERNAL_RULES: &[Rule] = &[
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
        forbidden: &["zmq", "zmq-sys", "tokio"],
        why: "wire is the codec only: no I/O, no runtime",
    },
    Rule {
        package: "zerorpc-transport",
        forbidden: &["tokio", "redis", "hickory-resolver", "hickory-proto"],
        why: "transport knows frames and heartbeats, not runtimes, discovery or tracing",
    },
    Rule {
        package: "zerorpc",
        forbidden: &[
            "redis",
            "hickory-resolver",
            "hickory-proto",
            "clap",
            "anyhow",
        ],
        why: "core knows nothing of Redis, DNS or command lines",
    },
    Rule {
        package: "zerorpc-hub",
        forbidden: &["redis", "hickory-resolver", "hickory-proto"],
        why: "the hub routes events below the RPC layer",
    },
];

/// One entry of the allow-list.
#[derive(Debug)]
struct Layer {
    package: &'static str,
    may_depend_on: &'static [&'static str],
    why: &'static str,
}

impl Layer {
    /// The allowed workspace crates, as English.
    fn allowed(&self) -> String {
        if self.may_depend_on.is_empty() {
            "no workspace crate".to_owned()
        } else {
            list(self.may_depend_on, "and")
        }
    }
}

/// One external rule: `package` must not depend on any of `forbidden`.
#[derive(Debug)]
struct Rule {
    package: &'static str,
    forbidden: &'static [&'static str],
    why: &'static str,
}

/// A forbidden dependency found in the graph.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Violation {
    /// The package names from the offender to the forbidden crate; just the
    /// offender for a crate missing from [`LAYERS`].
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
    for layer in LAYERS {
        println!(
            "  {} may depend on {} ({})",
            layer.package,
            layer.allowed(),
            layer.why
        );
    }
    for rule in EXTERNAL_RULES {
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
        println!("  note: {package} is not in the workspace yet; its rules were skipped");
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
    /// Packages of [`LAYERS`] that are not workspace members.
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
    let absent = LAYERS
        .iter()
        .filter(|layer| graph.member(layer.package).is_none())
        .map(|layer| layer.package.to_owned())
        .collect();
    for (name, id) in &graph.members {
        let Some(layer) = LAYERS.iter().find(|layer| layer.package == name) else {
            violations.push(Violation {
                path: vec![name.clone()],
                why: "a workspace crate missing from the layering table: add it to LAYERS \
                      in xtask/src/layering.rs with the workspace crates it may depend on"
                    .to_owned(),
            });
            continue;
        };
        // Each member's own edges are checked in its turn, so checking the
        // first members reached (directly or through external crates)
        // covers every transitive path.
        for path in graph.members_reached(id) {
            let reached = path.last().expect("a path ends at the member reached");
            if !layer.may_depend_on.contains(&reached.as_str()) {
                violations.push(Violation {
                    path,
                    why: format!("{name} may depend on {}: {}", layer.allowed(), layer.why),
                });
            }
        }
    }
    for rule in EXTERNAL_RULES {
        let Some(id) = graph.member(rule.package) else {
            continue;
        };
        for forbidden in rule.forbidden {
            if let Some(path) = graph.path_to(id, forbidden) {
                violations.push(Violation {
                    path,
                    why: rule.why.to_owned(),
                });
            }
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

    /// The paths (package names) from the member `from` to each other
    /// workspace member it reaches without passing through a third member.
    fn members_reached(&self, from: &str) -> Vec<Vec<String>> {
        let member_ids: HashSet<&str> = self.members.iter().map(|(_, id)| id.as_str()).collect();
        let mut parent: HashMap<&str, &str> = HashMap::new();
        let mut seen = HashSet::from([from]);
        let mut queue = VecDeque::from([from]);
        let mut reached = Vec::new();
        while let Some(id) = queue.pop_front() {
            if id != from && member_ids.contains(id) {
                reached.push(self.path_back(&parent, id));
                continue;
            }
            for next in self.edges.get(id).into_iter().flatten() {
                if seen.insert(next) {
                    parent.insert(next, id);
                    queue.push_back(next);
                }
            }
        }
        reached.sort();
        reached
    }

    /// The package names from the search's start to `to`, following `parent`.
    fn path_back(&self, parent: &HashMap<&str, &str>, to: &str) -> Vec<String> {
        let mut path = vec![to];
        while let Some(previous) = parent.get(path[path.len() - 1]) {
            path.push(previous);
        }
        path.reverse();
        path.iter()
            .map(|id| {
                self.names
                    .get(*id)
                    .cloned()
                    .unwrap_or_else(|| id.to_string())
            })
            .collect()
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
                return Some(self.path_back(&parent, id));
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

    /// A package of a test workspace: path-only dependencies on its siblings.
    struct Package {
        name: &'static str,
        deps: &'static [&'static str],
        dev_deps: &'static [&'static str],
        /// False for a stand-in of an external crate (excluded from the workspace).
        member: bool,
    }

    fn member(name: &'static str, deps: &'static [&'static str]) -> Package {
        Package {
            name,
            deps,
            dev_deps: &[],
            member: true,
        }
    }

    fn external(name: &'static str, deps: &'static [&'static str]) -> Package {
        Package {
            member: false,
            ..member(name, deps)
        }
    }

    /// The workspace crates of this repository with their allowed edges, as
    /// a starting point that passes the check.
    fn layered() -> Vec<Package> {
        LAYERS
            .iter()
            .map(|layer| member(layer.package, layer.may_depend_on))
            .collect()
    }

    /// A throwaway workspace, removed on drop.
    struct Workspace {
        root: PathBuf,
    }

    impl Workspace {
        fn new(packages: &[Package]) -> Workspace {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let root = std::env::temp_dir().join(format!(
                "xtask-layering-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&root);
            let quoted = |member: bool| -> Vec<String> {
                packages
                    .iter()
                    .filter(|p| p.member == member)
                    .map(|p| format!("{:?}", p.name))
                    .collect()
            };
            // Path dependencies inside the workspace directory would become
            // members unless excluded.
            write(
                &root.join("Cargo.toml"),
                &format!(
                    "[workspace]\nresolver = \"3\"\nmembers = [{}]\nexclude = [{}]\n",
                    quoted(true).join(", "),
                    quoted(false).join(", ")
                ),
            );
            for package in packages {
                let line = |dep: &&str| format!("{dep} = {{ path = \"../{dep}\" }}\n");
                let mut manifest = format!(
                    "[package]\nname = \"{}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\n",
                    package.name
                );
                manifest.extend(package.deps.iter().map(line));
                manifest.push_str("\n[dev-dependencies]\n");
                manifest.extend(package.dev_deps.iter().map(line));
                if !package.member {
                    // Its own workspace root, so cargo does not look for one above.
                    manifest.push_str("\n[workspace]\n");
                }
                let dir = root.join(package.name);
                write(&dir.join("Cargo.toml"), &manifest);
                write(&dir.join("src/lib.rs"), "//! Test package.\n");
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

    /// `layered()` with `name`'s dependencies replaced and `extra` packages added.
    fn layered_with(
        name: &str,
        deps: &'static [&'static str],
        extra: Vec<Package>,
    ) -> Vec<Package> {
        let mut packages = layered();
        packages
            .iter_mut()
            .find(|p| p.name == name)
            .expect("a package of LAYERS")
            .deps = deps;
        packages.extend(extra);
        packages
    }

    #[test]
    fn the_allowed_graph_passes() {
        let report = Workspace::new(&layered()).check();
        assert_eq!(paths(&report), Vec::<String>::new());
        assert_eq!(report.absent, Vec::<String>::new());
    }

    #[test]
    fn this_workspace_passes() {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let report = check(&manifest).expect("cargo metadata on this workspace");
        assert_eq!(paths(&report), Vec::<String>::new());
    }

    #[test]
    fn new_edge_between_workspace_crates_is_reported() {
        let ws = Workspace::new(&layered_with(
            "zerorpc-hub",
            &["zerorpc-wire", "zerorpc-transport"],
            vec![],
        ));
        let report = ws.check();
        assert_eq!(paths(&report), ["zerorpc-hub -> zerorpc-transport"]);
        assert!(
            report.violations[0].why.starts_with(
                "zerorpc-hub may depend on zerorpc-wire, zerorpc-endpoint and zerorpc-yaml:"
            ),
            "{}",
            report.violations[0]
        );
    }

    #[test]
    fn edge_to_a_crate_reachable_anyway_is_still_a_new_edge() {
        // The cli reaches wire through core; a direct edge is a new arrow.
        let ws = Workspace::new(&layered_with(
            "zerorpc-cli",
            &["zerorpc", "zerorpc-hub", "zerorpc-wire"],
            vec![],
        ));
        assert_eq!(paths(&ws.check()), ["zerorpc-cli -> zerorpc-wire"]);
    }

    #[test]
    fn edge_through_an_external_crate_is_reported_with_its_path() {
        let ws = Workspace::new(&layered_with(
            "zerorpc-hub",
            &["zerorpc-wire", "helper"],
            vec![external("helper", &["zerorpc-transport"])],
        ));
        assert_eq!(
            paths(&ws.check()),
            ["zerorpc-hub -> helper -> zerorpc-transport"]
        );
    }

    #[test]
    fn normal_dependency_on_test_support_is_reported() {
        let ws = Workspace::new(&layered_with(
            "zerorpc",
            &[
                "zerorpc-wire",
                "zerorpc-transport",
                "zerorpc-macros",
                "zerorpc-test-support",
            ],
            vec![],
        ));
        assert_eq!(paths(&ws.check()), ["zerorpc -> zerorpc-test-support"]);
    }

    #[test]
    fn crate_missing_from_the_table_is_reported() {
        let mut packages = layered();
        packages.push(member("zerorpc-newcomer", &["zerorpc"]));
        let report = Workspace::new(&packages).check();
        assert_eq!(paths(&report), ["zerorpc-newcomer"]);
        assert!(
            report.violations[0].why.contains("add it to LAYERS"),
            "{}",
            report.violations[0]
        );
    }

    #[test]
    fn forbidden_external_dependency_is_reported() {
        let ws = Workspace::new(&[member("zerorpc-wire", &["tokio"]), external("tokio", &[])]);
        let report = ws.check();
        assert_eq!(paths(&report), ["zerorpc-wire -> tokio"]);
        assert!(report.violations[0].why.contains("no I/O"));
    }

    #[test]
    fn transitive_external_dependency_is_reported_with_its_path() {
        let ws = Workspace::new(&[
            member("zerorpc", &["helper"]),
            external("helper", &["redis"]),
            external("redis", &[]),
        ]);
        assert_eq!(paths(&ws.check()), ["zerorpc -> helper -> redis"]);
    }

    #[test]
    fn allowed_and_dev_only_dependencies_pass() {
        let ws = Workspace::new(&[
            Package {
                dev_deps: &["tokio", "zerorpc-test-support"],
                ..member("zerorpc-wire", &["rmp"])
            },
            member("zerorpc-transport", &["zerorpc-wire"]),
            member("zerorpc-test-support", &[]),
            external("rmp", &[]),
            external("tokio", &[]),
        ]);
        let report = ws.check();
        assert_eq!(paths(&report), Vec::<String>::new());
        // Table entries not (yet) in the workspace are skipped, not failed.
        assert!(report.absent.contains(&"zerorpc-hub".to_owned()));
        assert!(!report.absent.contains(&"zerorpc-wire".to_owned()));
    }

    #[test]
    fn only_applications_may_use_clap_and_anyhow() {
        let ws = Workspace::new(&[
            member("zerorpc-cli", &["clap", "anyhow"]),
            member("xtask", &["anyhow"]),
            member("zerorpc-discovery", &["anyhow"]),
            external("clap", &[]),
            external("anyhow", &[]),
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
        let ws = Workspace::new(&[member("zerorpc", &["anyhow"]), external("anyhow", &[])]);
        assert_eq!(paths(&ws.check()), ["zerorpc -> anyhow"]);
    }

    #[test]
    fn broken_manifest_is_an_error_not_a_pass() {
        let ws = Workspace::new(&[member("zerorpc-wire", &["missing"])]);
        let error = check(&ws.root.join("Cargo.toml")).unwrap_err();
        assert!(error.to_string().contains("cargo metadata"), "{error:#}");
    }

    #[test]
    fn the_table_is_a_layering() {
        let names: HashSet<&str> = LAYERS.iter().map(|l| l.package).collect();
        assert_eq!(names.len(), LAYERS.len(), "one entry per crate");
        for layer in LAYERS {
            assert!(!layer.why.is_empty());
            for dep in layer.may_depend_on {
                assert!(names.contains(dep), "{layer:?}: {dep} has no entry");
            }
        }
        // Acyclic: some order puts every crate after what it may depend on.
        let mut placed: HashSet<&str> = HashSet::new();
        while placed.len() < LAYERS.len() {
            let before = placed.len();
            for layer in LAYERS {
                if layer.may_depend_on.iter().all(|d| placed.contains(d)) {
                    placed.insert(layer.package);
                }
            }
            assert!(placed.len() > before, "the allowed edges form a cycle");
        }
        for rule in EXTERNAL_RULES {
            assert!(names.contains(rule.package), "{rule:?}");
            assert!(!rule.why.is_empty());
        }
    }
}
