//! Architecture fitness test: the modules of `server` (and of `protocol` and `muxer`) form no cycle.
//!
//! Every `.rs` file under `<crate>/src` is parsed with `syn`. The module tree is built from `lib.rs`
//! down through its `mod` declarations (`foo.rs` or `foo/mod.rs` is `foo`, `foo/bar.rs` is
//! `foo::bar`, inline `mod x { .. }` blocks are modules too). An edge A -> B means that module A
//! references something that module B *defines*. The rules:
//! - References are `use` trees and every path in items, expressions, types and patterns, and the
//!   `a::b` paths written in the tokens of macro calls (`counter!(crate::metrics::X)`).
//! - A path is resolved to the module that defines what it names: module prefixes are walked, and
//!   `use`/`pub use` re-exports are followed to their source (glob re-exports best effort). So
//!   `super::Batch`, re-exported by `hub/mod.rs` from `stream`, is an edge to `hub::stream`.
//! - A path naming a module is an edge to that module; paths into other crates are ignored.
//! - A bare `mod child;` is not an edge; a `pub use child::X` is (parent -> child), and is shown as
//!   "re-export only" when the parent uses nothing else of the child. A child that uses an item
//!   defined in its parent's `mod.rs` has an edge to the parent. Self-edges are ignored.
//! - Test code is skipped: `#[cfg(test)]` modules (inline or in their own file), items and
//!   impl items.
//! - `main.rs` is skipped: the binary is another crate that can only use the library's public API,
//!   so it cannot close a cycle inside the library.
//!
//! Cycles are found as strongly connected components (Tarjan). For each component the test
//! prints a shortest cycle through each of its edges, with one referencing `file:line` per edge.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

use proc_macro2::{Spacing, TokenStream, TokenTree};
use syn::visit::{self, Visit};
use syn::{Attribute, Ident, ImplItem, Item, UseTree};

/// How deep `use` chains are followed before giving up (guards against `use` loops).
const MAX_DEPTH: usize = 32;

#[test]
fn server_has_no_module_cycles() {
    check_crate("server", "src");
}

#[test]
fn protocol_has_no_module_cycles() {
    check_crate("protocol", "../protocol/src");
}

#[test]
fn muxer_has_no_module_cycles() {
    check_crate("muxer", "../muxer/src");
}

fn check_crate(krate: &str, src: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(src);
    let (mut sources, mut files, mut dirs) = (Vec::new(), BTreeMap::new(), vec![root.clone()]);
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read source dir") {
            let path = entry.expect("read dir entry").path();
            let rel = path
                .strip_prefix(&root)
                .expect("under src")
                .to_string_lossy()
                .replace('\\', "/");
            let stem = rel.strip_suffix(".rs").unwrap_or_default();
            let mut module: Vec<&str> = stem.split('/').collect();
            if path.is_dir() {
                dirs.push(path);
                continue;
            } else if stem.is_empty() || stem == "main" {
                continue; // not Rust, or the binary (see the module docs)
            } else if stem == "lib" || module.last() == Some(&"mod") {
                module.pop();
            }
            files.insert(module.join("::"), format!("{krate}/src/{rel}"));
            sources.push((
                module.join("::"),
                std::fs::read_to_string(&path).expect("read source file"),
            ));
        }
    }
    let graph = analyze(&sources).unwrap_or_else(|e| panic!("{krate}: {e}"));
    assert!(
        graph.modules.len() > 1,
        "{krate}: no modules found under {}",
        root.display()
    );
    let report = graph.report(krate, &files);
    assert!(report.is_empty(), "{krate} has module cycles:\n{report}");
}

/// A path as written in a module, and the line it is on.
struct Ref {
    segs: Vec<String>,
    line: usize,
    /// `pub use x::*`: an edge to the module `x` itself.
    glob: bool,
    /// From a `pub use` (a re-export), not from a use of the item.
    reexport: bool,
}

impl Ref {
    fn at(segs: Vec<String>, line: usize) -> Ref {
        Ref {
            segs,
            line,
            glob: false,
            reexport: false,
        }
    }
}

#[derive(Default)]
struct Module {
    path: Vec<String>,
    /// Module path of the file this module is written in (differs for inline modules).
    file: String,
    children: BTreeMap<String, usize>,
    items: BTreeSet<String>,
    /// `use` bindings: name -> path as written (relative to this module).
    bindings: BTreeMap<String, Vec<String>>,
    globs: Vec<Vec<String>>,
    refs: Vec<Ref>,
}

/// What a path resolves to: a module, an item defined in a module, or an unknown name in one.
enum Res {
    Module(usize),
    Item(usize),
    Unknown(usize),
}

struct Graph {
    modules: Vec<Module>,
    /// (from, to) -> (line, path, is a re-export) of the first reference, preferring a real use.
    edges: BTreeMap<(usize, usize), (usize, String, bool)>,
}

/// Builds the module graph from `(module path, contents)` pairs; `""` is the crate root.
fn analyze(sources: &[(String, String)]) -> Result<Graph, String> {
    let files: BTreeMap<&str, &str> = sources.iter().map(|(m, t)| (m.as_str(), t.as_str())).collect();
    let mut graph = Graph {
        modules: Vec::new(),
        edges: BTreeMap::new(),
    };
    graph.load_file(&files, Vec::new())?;
    for from in 0..graph.modules.len() {
        for r in &graph.modules[from].refs {
            let Some(to) = graph.target(from, r).filter(|&to| to != from) else {
                continue;
            };
            let keep = match graph.edges.get(&(from, to)) {
                None => true,
                Some(seen) => seen.2 && !r.reexport, // a use of the item replaces a re-export
            };
            if keep {
                graph.edges.insert((from, to), (r.line, r.segs.join("::"), r.reexport));
            }
        }
    }
    Ok(graph)
}

impl Graph {
    fn load_file(&mut self, files: &BTreeMap<&str, &str>, path: Vec<String>) -> Result<usize, String> {
        let key = path.join("::");
        let text = files
            .get(key.as_str())
            .ok_or_else(|| format!("no source file for module `{key}`"))?;
        let file = syn::parse_file(text).map_err(|e| format!("module `{key}`: {e}"))?;
        self.add_module(files, path, &key, &file.items)
    }

    fn add_module(
        &mut self,
        files: &BTreeMap<&str, &str>,
        path: Vec<String>,
        file: &str,
        items: &[Item],
    ) -> Result<usize, String> {
        let id = self.modules.len();
        self.modules.push(Module {
            path: path.clone(),
            file: file.to_string(),
            ..Module::default()
        });
        for item in items.iter().filter(|i| !is_test(item_info(i).0)) {
            match item {
                Item::Mod(m) => {
                    let child = [path.as_slice(), &[m.ident.to_string()]].concat();
                    let cid = match &m.content {
                        Some((_, inner)) => self.add_module(files, child, file, inner)?,
                        None => self.load_file(files, child)?,
                    };
                    self.modules[id].children.insert(m.ident.to_string(), cid);
                }
                Item::Use(u) if u.leading_colon.is_none() => {
                    let public = !matches!(u.vis, syn::Visibility::Inherited);
                    let module = &mut self.modules[id];
                    for (r, bind) in use_leaves(&u.tree) {
                        if r.glob {
                            module.globs.push(r.segs.clone());
                        } else if let Some(name) = bind {
                            module.bindings.insert(name, r.segs.clone());
                        }
                        // Names used through a private glob are resolved one by one instead.
                        if public || !r.glob {
                            module.refs.push(Ref { reexport: public, ..r });
                        }
                    }
                }
                other => {
                    if let Some(name) = item_info(other).1 {
                        self.modules[id].items.insert(name.to_string());
                    }
                    let mut refs = RefCollector::default();
                    refs.visit_item(other);
                    self.modules[id].refs.extend(refs.0);
                }
            }
        }
        Ok(id)
    }

    /// The module a reference from `from` points into, if it is in this crate.
    fn target(&self, from: usize, r: &Ref) -> Option<usize> {
        let res = match r.segs.as_slice() {
            // A lone name is a local, or an import already counted by its `use`: only names
            // brought in by a glob import add an edge.
            [name] if !r.glob => self.lookup(from, name, 0).filter(|res| matches!(res, Res::Item(_)))?,
            segs => self.resolve_abs(&self.absolutize(from, segs, 0)?, 0)?,
        };
        match res {
            Res::Module(m) | Res::Item(m) | Res::Unknown(m) => Some(m),
        }
    }

    /// Turns a path as written in module `m` into a path from the crate root; `None` if it
    /// starts outside the crate (another crate, the prelude, a local, a generic, `Self`).
    fn absolutize(&self, m: usize, segs: &[String], depth: usize) -> Option<Vec<String>> {
        let module = &self.modules[m];
        let (first, rest) = segs.split_first()?;
        let start = match first.as_str() {
            _ if depth > MAX_DEPTH => return None,
            "crate" => Vec::new(),
            "self" => module.path.clone(),
            "super" => {
                let ups = segs.iter().take_while(|s| *s == "super").count();
                let base = &module.path[..module.path.len().checked_sub(ups)?];
                return Some([base, &segs[ups..]].concat());
            }
            name if module.children.contains_key(name) || module.items.contains(name) => {
                [module.path.as_slice(), std::slice::from_ref(first)].concat()
            }
            name => match module.bindings.get(name) {
                Some(target) => self.absolutize(m, target, depth + 1)?,
                None => [
                    self.glob_providing(m, name, depth + 1)?.as_slice(),
                    std::slice::from_ref(first),
                ]
                .concat(),
            },
        };
        Some([start.as_slice(), rest].concat())
    }

    /// Walks a crate-root path down the module tree, following `use` bindings.
    fn resolve_abs(&self, path: &[String], depth: usize) -> Option<Res> {
        let mut m = 0;
        for seg in path {
            match self.lookup(m, seg, depth + 1) {
                Some(Res::Module(c)) => m = c,
                Some(found) => return Some(found),
                None => return Some(Res::Unknown(m)),
            }
        }
        Some(Res::Module(m))
    }

    /// What `name` means inside module `m`: a child module, an item, an import, a glob import.
    fn lookup(&self, m: usize, name: &str, depth: usize) -> Option<Res> {
        let module = &self.modules[m];
        if depth > MAX_DEPTH {
            None
        } else if let Some(&c) = module.children.get(name) {
            Some(Res::Module(c))
        } else if module.items.contains(name) {
            Some(Res::Item(m))
        } else if let Some(target) = module.bindings.get(name) {
            self.resolve_abs(&self.absolutize(m, target, depth + 1)?, depth + 1)
        } else {
            let glob = self.glob_providing(m, name, depth + 1)?;
            self.resolve_abs(&[glob, vec![name.to_string()]].concat(), depth + 1)
        }
    }

    /// The crate-root path of a glob import of `m` whose module has `name`.
    fn glob_providing(&self, m: usize, name: &str, depth: usize) -> Option<Vec<String>> {
        self.modules[m].globs.iter().find_map(|g| {
            let path = self.absolutize(m, g, depth + 1)?;
            let Some(Res::Module(gm)) = self.resolve_abs(&path, depth + 1) else {
                return None;
            };
            matches!(self.lookup(gm, name, depth + 1)?, Res::Module(_) | Res::Item(_)).then_some(path)
        })
    }

    fn name(&self, m: usize) -> String {
        Some(self.modules[m].path.join("::"))
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "crate".into())
    }

    /// Per strongly connected component, a shortest cycle through each of its edges (as module
    /// ids, rotated to start at the smallest id).
    fn cycles(&self) -> Vec<BTreeSet<Vec<usize>>> {
        let mut adj = vec![Vec::new(); self.modules.len()];
        self.edges.keys().for_each(|&(from, to)| adj[from].push(to));
        let components = tarjan(&adj).into_iter().filter(|c| c.len() > 1);
        let cycles_of = |inside: BTreeSet<usize>| -> BTreeSet<Vec<usize>> {
            let inner = self
                .edges
                .keys()
                .filter(|(u, v)| inside.contains(u) && inside.contains(v));
            let cycle_through = |&(u, v): &(usize, usize)| {
                let mut cycle = shortest_path(&adj, &inside, v, u); // v ..= u, closed by u -> v
                let start = (0..cycle.len()).min_by_key(|&i| cycle[i]).unwrap_or(0);
                cycle.rotate_left(start);
                cycle
            };
            inner.map(cycle_through).collect()
        };
        components.map(|c| cycles_of(c.into_iter().collect())).collect()
    }

    fn cycle_names(&self, cycle: &[usize]) -> Vec<String> {
        cycle.iter().chain(cycle.first()).map(|&m| self.name(m)).collect()
    }

    fn all_cycles(&self) -> Vec<String> {
        self.cycles()
            .iter()
            .flatten()
            .map(|c| self.cycle_names(c).join(" -> "))
            .collect()
    }

    fn edge_names(&self) -> BTreeSet<(String, String)> {
        self.edges.keys().map(|&(a, b)| (self.name(a), self.name(b))).collect()
    }

    /// Every cycle, with where each of its edges comes from; empty when there is none.
    fn report(&self, krate: &str, files: &BTreeMap<String, String>) -> String {
        let mut out = String::new();
        for component in self.cycles() {
            let members: BTreeSet<String> = component.iter().flatten().map(|&m| self.name(m)).collect();
            let members: Vec<String> = members.into_iter().collect();
            out += &format!("{krate}: modules in one cycle: {{{}}}\n", members.join(", "));
            for cycle in component {
                out += &format!("  {krate}: cycle {}\n", self.cycle_names(&cycle).join(" -> "));
                for (i, &from) in cycle.iter().enumerate() {
                    let to = cycle[(i + 1) % cycle.len()];
                    let (line, path, reexport) = &self.edges[&(from, to)];
                    let file = files.get(&self.modules[from].file).unwrap_or(&self.modules[from].file);
                    let only = if *reexport { " (re-export only)" } else { "" };
                    let (from, to) = (self.name(from), self.name(to));
                    out += &format!("      {from} -> {to}: {file}:{line} `{path}`{only}\n");
                }
            }
        }
        out
    }
}

/// Strongly connected components (Tarjan's algorithm).
fn tarjan(adj: &[Vec<usize>]) -> Vec<Vec<usize>> {
    #[derive(Default)]
    struct State {
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(adj: &[Vec<usize>], s: &mut State, v: usize) {
        (s.index[v], s.low[v], s.on_stack[v]) = (Some(s.next), s.next, true);
        s.next += 1;
        s.stack.push(v);
        for &w in &adj[v] {
            if s.index[w].is_none() {
                visit(adj, s, w);
                s.low[v] = s.low[v].min(s.low[w]);
            } else if s.on_stack[w] {
                s.low[v] = s.low[v].min(s.index[w].unwrap_or(usize::MAX));
            }
        }
        if s.index[v] == Some(s.low[v]) {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            s.out.push(component);
        }
    }
    let n = adj.len();
    let mut s = State {
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        ..State::default()
    };
    for v in 0..n {
        if s.index[v].is_none() {
            visit(adj, &mut s, v);
        }
    }
    s.out
}

/// Breadth-first path `from ..= to` inside `within`.
fn shortest_path(adj: &[Vec<usize>], within: &BTreeSet<usize>, from: usize, to: usize) -> Vec<usize> {
    let (mut prev, mut queue) = (BTreeMap::from([(from, from)]), VecDeque::from([from]));
    while let Some(v) = queue.pop_front().filter(|&v| v != to) {
        for &w in adj[v].iter().filter(|w| within.contains(w)) {
            if let Entry::Vacant(e) = prev.entry(w) {
                e.insert(v);
                queue.push_back(w);
            }
        }
    }
    let mut path = vec![to];
    while let Some(&p) = prev.get(&path[path.len() - 1]).filter(|&&p| p != path[path.len() - 1]) {
        path.push(p);
    }
    path.reverse();
    path
}

/// Collects the paths inside an item: types, expressions, patterns, macro tokens, nested `use`.
#[derive(Default)]
struct RefCollector(Vec<Ref>);

impl<'ast> Visit<'ast> for RefCollector {
    fn visit_path(&mut self, p: &'ast syn::Path) {
        if let (None, Some(first)) = (p.leading_colon, p.segments.first()) {
            let segs = p.segments.iter().map(|s| s.ident.to_string()).collect();
            self.0.push(Ref::at(segs, first.ident.span().start().line));
        }
        visit::visit_path(self, p);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        visit::visit_macro(self, m);
        scan_tokens(m.tokens.clone(), &mut self.0);
    }

    fn visit_item(&mut self, i: &'ast Item) {
        match i {
            _ if is_test(item_info(i).0) => {}
            // A `use` in a function body counts, but binds no name module-wide.
            Item::Use(u) if u.leading_colon.is_none() => self
                .0
                .extend(use_leaves(&u.tree).into_iter().map(|(r, _)| r).filter(|r| !r.glob)),
            Item::Use(_) | Item::Mod(_) => {}
            _ => visit::visit_item(self, i),
        }
    }

    fn visit_impl_item(&mut self, i: &'ast ImplItem) {
        let attrs: &[Attribute] = match i {
            ImplItem::Const(c) => &c.attrs,
            ImplItem::Fn(f) => &f.attrs,
            ImplItem::Type(t) => &t.attrs,
            ImplItem::Macro(m) => &m.attrs,
            _ => &[],
        };
        if !is_test(attrs) {
            visit::visit_impl_item(self, i);
        }
    }
}

/// Finds `a::b::c` paths in a macro call's tokens (which `syn` cannot parse without the macro).
fn scan_tokens(tokens: TokenStream, out: &mut Vec<Ref>) {
    let tts: Vec<TokenTree> = tokens.into_iter().collect();
    let colons = |i: usize| match (tts.get(i), tts.get(i + 1)) {
        (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b))) => {
            a.as_char() == ':' && a.spacing() == Spacing::Joint && b.as_char() == ':'
        }
        _ => false,
    };
    let mut i = 0;
    while i < tts.len() {
        match &tts[i] {
            TokenTree::Group(g) => scan_tokens(g.stream(), out),
            TokenTree::Ident(first) => {
                let leading_colon = i >= 2 && colons(i - 2);
                let mut segs = vec![first.to_string()];
                while let (true, Some(TokenTree::Ident(next))) = (colons(i + 1), tts.get(i + 3)) {
                    segs.push(next.to_string());
                    i += 3;
                }
                if segs.len() > 1 && !leading_colon {
                    out.push(Ref::at(segs, first.span().start().line));
                }
            }
            _ => {}
        }
        i += 1;
    }
}

/// The leaves of a `use` tree: each full path (a glob's is its module) and the name it binds.
fn use_leaves(tree: &UseTree) -> Vec<(Ref, Option<String>)> {
    fn walk(tree: &UseTree, prefix: &mut Vec<String>, out: &mut Vec<(Ref, Option<String>)>) {
        let mut leaf = |ident: &Ident, rename: Option<&Ident>| {
            let segs = [prefix.as_slice(), &[ident.to_string()]].concat();
            let segs = if ident == "self" { prefix.clone() } else { segs };
            let bind = rename
                .map(Ident::to_string)
                .or_else(|| segs.last().cloned())
                .filter(|b| b != "_");
            out.push((Ref::at(segs, ident.span().start().line), bind));
        };
        match tree {
            UseTree::Name(n) => leaf(&n.ident, None),
            UseTree::Rename(r) => leaf(&r.ident, Some(&r.rename)),
            UseTree::Glob(g) => {
                let line = g.star_token.span.start().line;
                out.push((
                    Ref {
                        glob: true,
                        ..Ref::at(prefix.clone(), line)
                    },
                    None,
                ));
            }
            UseTree::Group(g) => g.items.iter().for_each(|t| walk(t, prefix, out)),
            UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                walk(&p.tree, prefix, out);
                prefix.pop();
            }
        }
    }
    let mut out = Vec::new();
    walk(tree, &mut Vec::new(), &mut out);
    out
}

/// `#[cfg(test)]` or `#[cfg(all(test, ..))]`.
fn is_test(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|a| match &a.meta {
        syn::Meta::List(l) if l.path.is_ident("cfg") => {
            let cfg = l.tokens.to_string().replace(' ', "");
            let all = cfg.strip_prefix("all(").and_then(|c| c.strip_suffix(')'));
            cfg == "test" || all.is_some_and(|c| c.split(',').any(|p| p == "test"))
        }
        _ => false,
    })
}

/// An item's attributes, and the name it defines in its module (if any).
fn item_info(item: &Item) -> (&[Attribute], Option<&Ident>) {
    match item {
        Item::Const(i) => (&i.attrs, Some(&i.ident)),
        Item::Enum(i) => (&i.attrs, Some(&i.ident)),
        Item::Fn(i) => (&i.attrs, Some(&i.sig.ident)),
        Item::Static(i) => (&i.attrs, Some(&i.ident)),
        Item::Struct(i) => (&i.attrs, Some(&i.ident)),
        Item::Trait(i) => (&i.attrs, Some(&i.ident)),
        Item::TraitAlias(i) => (&i.attrs, Some(&i.ident)),
        Item::Type(i) => (&i.attrs, Some(&i.ident)),
        Item::Union(i) => (&i.attrs, Some(&i.ident)),
        Item::ExternCrate(i) => (&i.attrs, None),
        Item::ForeignMod(i) => (&i.attrs, None),
        Item::Impl(i) => (&i.attrs, None),
        Item::Macro(i) => (&i.attrs, None),
        Item::Mod(i) => (&i.attrs, None),
        Item::Use(i) => (&i.attrs, None),
        _ => (&[], None),
    }
}

// ---- The checker itself, on small in-memory crates ----

fn fixture(files: &[(&str, &str)]) -> Graph {
    analyze(
        &files
            .iter()
            .map(|(m, t)| (m.to_string(), t.to_string()))
            .collect::<Vec<_>>(),
    )
    .expect("parses")
}

fn edges(list: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[test]
fn checker_finds_a_two_module_cycle() {
    let g = fixture(&[
        ("", "mod a; mod b;"),
        ("a", "use crate::b::B; pub struct A(B);"),
        ("b", "pub struct B; pub fn make() -> crate::a::A { crate::a::A(B) }"),
    ]);
    assert_eq!(g.all_cycles(), ["a -> b -> a"]);
    assert!(g.report("fake", &BTreeMap::new()).contains("a -> b: a:1 `crate::b::B`"));
}

#[test]
fn checker_follows_a_reexport_to_the_defining_module() {
    let g = fixture(&[
        ("", "pub mod foo; mod user;"),
        ("foo", "mod child; mod sibling; pub use child::X; pub struct Parent;"),
        ("foo::child", "pub struct X;"),
        ("foo::sibling", "use super::X; pub fn f(_: X) {}"),
        ("user", "pub fn g(_: crate::foo::X) {}"),
    ]);
    let expected = [
        ("foo", "foo::child"),
        ("foo::sibling", "foo::child"),
        ("user", "foo::child"),
    ];
    assert_eq!(g.edge_names(), edges(&expected));
    assert!(g.all_cycles().is_empty());
}

#[test]
fn checker_counts_a_child_using_its_parents_own_item() {
    let files = [
        ("", "mod p;"),
        ("p", "mod c; pub struct P;"),
        ("p::c", "pub fn f(_: super::P) {}"),
    ];
    let g = fixture(&files);
    assert_eq!(g.edge_names(), edges(&[("p::c", "p")]));
    assert!(g.all_cycles().is_empty(), "a bare `mod c;` is not an edge");

    let reexporting = fixture(&[files[0], ("p", "mod c; pub struct P; pub use c::f;"), files[2]]);
    assert_eq!(reexporting.all_cycles(), ["p -> p::c -> p"]);
    assert!(reexporting
        .report("fake", &BTreeMap::new())
        .contains("`c::f` (re-export only)"));
}

#[test]
fn checker_skips_test_code() {
    let g = fixture(&[
        ("", "mod a; mod b; #[cfg(test)] mod tests;"),
        (
            "a",
            "pub struct A; #[cfg(test)] mod t { use crate::b::B; } #[cfg(all(test, unix))] fn t(_: crate::b::B) {}
             impl A { #[cfg(test)] fn u(_: crate::b::B) {} }",
        ),
        ("b", "pub struct B; pub fn f(_: crate::a::A) {}"),
        ("tests", "use crate::a::A; use crate::b::B;"),
    ]);
    assert_eq!(g.edge_names(), edges(&[("b", "a")]));
}

#[test]
fn checker_reads_macro_tokens_inline_modules_and_globs() {
    let g = fixture(&[
        ("", "mod metrics; mod hub; mod api;"),
        (
            "metrics",
            "pub const X: &str = \"x\"; pub mod inner { pub fn f() -> crate::hub::H { todo!() } }",
        ),
        // `metrics::counter!` here is the external crate: `hub` has no `metrics` of its own.
        ("hub", "pub struct H; fn g() { metrics::counter!(crate::metrics::X); }"),
        ("api", "use crate::hub::*; pub fn h(_: H) {}"),
    ]);
    let expected = [("api", "hub"), ("hub", "metrics"), ("metrics::inner", "hub")];
    assert_eq!(g.edge_names(), edges(&expected));
    assert!(g.all_cycles().is_empty(), "`metrics::inner` is not `metrics`");
}
