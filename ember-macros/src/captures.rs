//! Which variables of its surroundings a closure uses.
//!
//! A proc macro sees tokens, not name resolution, so this is the same approximation
//! `serde_closure` makes: a variable is a single-segment path expression (`factor`, not
//! `std::f64::consts::PI`) that starts with a lowercase letter or `_`, is not `self`, is not
//! called as a function (`helper(x)` names a function item), and is not bound inside the closure
//! (its parameters, `let`, `match`/`if let`/`while let`/`for` patterns, inner closures, items).
//! Macro arguments are read as expressions when they parse as a comma-separated list (`format!`,
//! `assert_eq!`, `vec!`), and inline format arguments (`"{name}"`) count too.
//!
//! Getting it wrong is never silent: a missed variable is captured by the closure itself, which
//! then is not zero-sized and fails Ember's build-time check; a wrongly found one (a lowercase
//! constant or unit struct) fails to compile as a captured value. Either way the explicit form
//! `func!([a, b] move |x| ..)` says exactly what to capture.

use std::collections::HashSet;

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use syn::punctuated::Punctuated;
use syn::visit::Visit;
use syn::{Expr, ExprClosure, Ident, Pat, Token};

/// The variables `closure` captures, in order of first use.
pub fn captured_variables(closure: &ExprClosure) -> Vec<Ident> {
    let mut finder = Finder::default();
    let mut params = HashSet::new();
    closure.inputs.iter().for_each(|p| bind_pat(p, &mut params));
    finder.scopes.push(params);
    finder.visit_expr(&closure.body);
    finder.found
}

#[derive(Default)]
struct Finder {
    /// Names bound in each enclosing scope, innermost last.
    scopes: Vec<HashSet<String>>,
    found: Vec<Ident>,
    seen: HashSet<String>,
}

/// Adds the names a pattern binds.
fn bind_pat(p: &Pat, out: &mut HashSet<String>) {
    match p {
        Pat::Ident(i) => {
            out.insert(i.ident.to_string());
            if let Some((_, sub)) = &i.subpat {
                bind_pat(sub, out);
            }
        }
        Pat::Or(o) => o.cases.iter().for_each(|c| bind_pat(c, out)),
        Pat::Paren(p) => bind_pat(&p.pat, out),
        Pat::Reference(r) => bind_pat(&r.pat, out),
        Pat::Slice(s) => s.elems.iter().for_each(|e| bind_pat(e, out)),
        Pat::Struct(s) => s.fields.iter().for_each(|f| bind_pat(&f.pat, out)),
        Pat::Tuple(t) => t.elems.iter().for_each(|e| bind_pat(e, out)),
        Pat::TupleStruct(t) => t.elems.iter().for_each(|e| bind_pat(e, out)),
        Pat::Type(t) => bind_pat(&t.pat, out),
        _ => {}
    }
}

impl Finder {
    fn bound(&self, name: &str) -> bool {
        self.scopes.iter().any(|s| s.contains(name))
    }

    fn candidate(&mut self, ident: &Ident) {
        let name = ident.to_string();
        let starts_lower = name
            .chars()
            .next()
            .is_some_and(|c| c.is_lowercase() || c == '_');
        if !starts_lower || name == "self" || name == "_" || self.bound(&name) {
            return;
        }
        if self.seen.insert(name) {
            self.found.push(ident.clone());
        }
    }

    fn in_scope(&mut self, names: HashSet<String>, f: impl FnOnce(&mut Self)) {
        self.scopes.push(names);
        f(self);
        self.scopes.pop();
    }

    /// A macro's arguments: expressions when they parse as a comma-separated list, else every
    /// identifier that is not a path segment, a method, a function call or a macro name; plus
    /// `{name}` / `{name:…}` inline arguments of string literals.
    fn visit_tokens(&mut self, tokens: &TokenStream) {
        let parser = Punctuated::<Expr, Token![,]>::parse_terminated;
        match syn::parse::Parser::parse2(parser, tokens.clone()) {
            Ok(exprs) => exprs.iter().for_each(|e| self.visit_expr(e)),
            Err(_) => self.scan_idents(tokens),
        }
        for t in tokens.clone() {
            if let TokenTree::Literal(lit) = t {
                let span = lit.span();
                if let Ok(s) = syn::parse2::<syn::LitStr>(TokenTree::Literal(lit).into()) {
                    for name in inline_format_args(&s.value()) {
                        self.candidate(&Ident::new(&name, span));
                    }
                }
            }
        }
    }

    fn scan_idents(&mut self, tokens: &TokenStream) {
        let trees: Vec<TokenTree> = tokens.clone().into_iter().collect();
        for (i, t) in trees.iter().enumerate() {
            match t {
                TokenTree::Ident(id) => {
                    let after_path = i > 0
                        && matches!(
                            &trees[i - 1],
                            TokenTree::Punct(p) if matches!(p.as_char(), '.' | ':')
                        );
                    let before_path = matches!(
                        trees.get(i + 1),
                        Some(TokenTree::Punct(p)) if matches!(p.as_char(), '!' | ':')
                    );
                    let called = matches!(
                        trees.get(i + 1),
                        Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis
                    );
                    if !after_path && !before_path && !called {
                        self.candidate(id);
                    }
                }
                TokenTree::Group(g) => self.scan_idents(&g.stream()),
                _ => {}
            }
        }
    }

    /// The condition of `if` / `while`: names bound by `let` patterns (also in `&&` chains)
    /// are visible in the body, and in the chain to their right.
    fn visit_condition(&mut self, cond: &Expr, names: &mut HashSet<String>) {
        match cond {
            Expr::Let(l) => {
                self.visit_expr(&l.expr);
                bind_pat(&l.pat, names);
            }
            Expr::Binary(b) if matches!(b.op, syn::BinOp::And(_)) => {
                self.visit_condition(&b.left, names);
                let left = names.clone();
                self.in_scope(left, |f| f.visit_condition(&b.right, names));
            }
            e => self.visit_expr(e),
        }
    }
}

/// `{name}` and `{name:spec}` in a format string (not `{{`, `{}` or positional `{0}`).
fn inline_format_args(s: &str) -> Vec<String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'{' {
            i += 1;
            continue;
        }
        if b.get(i + 1) == Some(&b'{') {
            i += 2;
            continue;
        }
        let start = i + 1;
        let mut j = start;
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
            j += 1;
        }
        let named = j > start && (b[start].is_ascii_lowercase() || b[start] == b'_');
        if named && matches!(b.get(j), Some(b'}' | b':')) {
            out.push(s[start..j].to_string());
        }
        i = j.max(i + 1);
    }
    out
}

impl<'ast> Visit<'ast> for Finder {
    fn visit_expr_closure(&mut self, c: &'ast ExprClosure) {
        let mut names = HashSet::new();
        c.inputs.iter().for_each(|p| bind_pat(p, &mut names));
        self.in_scope(names, |f| f.visit_expr(&c.body));
    }

    fn visit_block(&mut self, b: &'ast syn::Block) {
        // Items are visible in the whole block, `let` bindings from their statement on.
        let items = b
            .stmts
            .iter()
            .filter_map(|s| match s {
                syn::Stmt::Item(syn::Item::Fn(f)) => Some(f.sig.ident.to_string()),
                syn::Stmt::Item(syn::Item::Const(c)) => Some(c.ident.to_string()),
                syn::Stmt::Item(syn::Item::Static(s)) => Some(s.ident.to_string()),
                _ => None,
            })
            .collect();
        self.scopes.push(items);
        for s in &b.stmts {
            match s {
                syn::Stmt::Local(l) => {
                    if let Some(init) = &l.init {
                        self.visit_expr(&init.expr);
                        if let Some((_, diverge)) = &init.diverge {
                            self.visit_expr(diverge);
                        }
                    }
                    let mut names = HashSet::new();
                    bind_pat(&l.pat, &mut names);
                    if let Some(scope) = self.scopes.last_mut() {
                        scope.extend(names);
                    }
                }
                syn::Stmt::Item(_) => {}
                syn::Stmt::Expr(e, _) => self.visit_expr(e),
                syn::Stmt::Macro(m) => self.visit_tokens(&m.mac.tokens),
            }
        }
        self.scopes.pop();
    }

    fn visit_arm(&mut self, a: &'ast syn::Arm) {
        let mut names = HashSet::new();
        bind_pat(&a.pat, &mut names);
        self.in_scope(names, |f| {
            if let Some((_, guard)) = &a.guard {
                f.visit_expr(guard);
            }
            f.visit_expr(&a.body);
        });
    }

    fn visit_expr_if(&mut self, e: &'ast syn::ExprIf) {
        let mut names = HashSet::new();
        self.visit_condition(&e.cond, &mut names);
        self.in_scope(names, |f| f.visit_block(&e.then_branch));
        if let Some((_, els)) = &e.else_branch {
            self.visit_expr(els);
        }
    }

    fn visit_expr_while(&mut self, e: &'ast syn::ExprWhile) {
        let mut names = HashSet::new();
        self.visit_condition(&e.cond, &mut names);
        self.in_scope(names, |f| f.visit_block(&e.body));
    }

    fn visit_expr_for_loop(&mut self, e: &'ast syn::ExprForLoop) {
        self.visit_expr(&e.expr);
        let mut names = HashSet::new();
        bind_pat(&e.pat, &mut names);
        self.in_scope(names, |f| f.visit_block(&e.body));
    }

    fn visit_expr_path(&mut self, p: &'ast syn::ExprPath) {
        let path = &p.path;
        if p.qself.is_none()
            && path.leading_colon.is_none()
            && path.segments.len() == 1
            && path.segments[0].arguments.is_none()
        {
            self.candidate(&path.segments[0].ident);
        }
    }

    fn visit_expr_call(&mut self, c: &'ast syn::ExprCall) {
        // `helper(x)` calls a function item; a variable holding a closure or a function pointer
        // cannot be shipped anyway.
        let names_a_function =
            matches!(&*c.func, Expr::Path(p) if p.qself.is_none() && p.path.segments.len() == 1);
        if !names_a_function {
            self.visit_expr(&c.func);
        }
        c.args.iter().for_each(|a| self.visit_expr(a));
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        self.visit_tokens(&m.tokens);
    }

    fn visit_item(&mut self, _: &'ast syn::Item) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(src: &str) -> Vec<String> {
        let closure: ExprClosure = syn::parse_str(src).expect("closure");
        captured_variables(&closure)
            .iter()
            .map(|i| i.to_string())
            .collect()
    }

    #[test]
    fn finds_free_variables_in_order() {
        assert_eq!(
            names("move |x| x * factor + offset - factor"),
            ["factor", "offset"]
        );
        assert_eq!(names("|(a, b): (u32, u32)| a + b + c"), ["c"]);
        assert_eq!(names("|x| names.contains(&x)"), ["names"]);
    }

    #[test]
    fn ignores_paths_calls_constants_and_self() {
        assert_eq!(
            names("|x| std::cmp::max(x, LIMIT) + helper(x) + Self::K + self.k"),
            Vec::<String>::new()
        );
        assert_eq!(
            names("|x: String| x.parse::<u32>().unwrap_or(default)"),
            ["default"]
        );
        assert_eq!(names("|x| Point { x, y }"), ["y"]);
    }

    #[test]
    fn respects_bindings_inside_the_body() {
        assert_eq!(names("|x| { let y = x + k; y * y }"), ["k"]);
        assert_eq!(names("|x| { let k = 1; x + k }"), Vec::<String>::new());
        assert_eq!(names("|x| { let y = y + 1; y }"), ["y"]);
        assert_eq!(
            names("|x| match x { Some(v) => v + d, None => e }"),
            ["d", "e"]
        );
        assert_eq!(names("|x| if let Some(v) = x { v } else { v }"), ["v"]);
        assert_eq!(names("|x| { for i in 0..n { let _ = i; } x }"), ["n"]);
        assert_eq!(names("|x| x.iter().map(|y| y + z).sum::<u32>()"), ["z"]);
        assert_eq!(
            names("|x| { fn twice(v: u32) -> u32 { v * 2 } twice(x) + m }"),
            ["m"]
        );
        assert_eq!(
            names("|x| if let Some(a) = x && a > lim { a } else { 0 }"),
            ["lim"]
        );
    }

    #[test]
    fn reads_macro_arguments_and_inline_format_args() {
        assert_eq!(
            names(r#"|x| format!("{prefix}-{}-{{lit}}", x + n)"#),
            ["n", "prefix"]
        );
        assert_eq!(names("|x| vec![x; count]"), ["count"]);
        assert_eq!(names("|x| { assert_eq!(x, expected); x }"), ["expected"]);
    }

    #[test]
    fn inline_format_args_skip_escapes_and_positions() {
        assert_eq!(
            inline_format_args("{a} {{b}} {0} {} {c:>8} {D}"),
            ["a", "c"]
        );
    }
}
