//! Rust source as the checks need it: without comments and literals (a path in a doc comment
//! or a string is not a dependency), cut into the few kinds of tokens paths are made of.

/// A token of Rust source, with the line it is on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// An identifier or keyword, `::`, or any other single character.
    pub text: String,
    /// 1-based line number.
    pub line: usize,
}

/// `src` with every comment, string, byte string, raw string and character literal replaced by
/// spaces (newlines are kept, so line numbers stay right).
pub fn strip(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        let prev_ident = i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_');
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            // Block comments nest in Rust.
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
        } else if !prev_ident
            && (c == 'r' || (c == 'b' && next == Some('r')))
            && raw_string_start(&b, i).is_some()
        {
            let (hashes, body) = raw_string_start(&b, i).unwrap_or((0, i));
            for _ in i..body {
                out.push(' ');
            }
            i = body;
            // Up to and including `"` followed by the same number of `#`.
            while i < b.len() {
                if b[i] == '"' && (0..hashes).all(|k| b.get(i + 1 + k) == Some(&'#')) {
                    for _ in 0..=hashes {
                        out.push(' ');
                    }
                    i += 1 + hashes;
                    break;
                }
                blank(&mut out, b[i]);
                i += 1;
            }
        } else if c == '"' || (c == 'b' && next == Some('"') && !prev_ident) {
            if c == 'b' {
                out.push(' ');
                i += 1;
            }
            out.push(' ');
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < b.len() {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{1F600}') or a lifetime ('a): a lifetime is not
            // closed by a quote right after its first character.
            if next == Some('\\') {
                out.push(' ');
                i += 1;
                while i < b.len() && b[i] != '\'' {
                    if b[i] == '\\' {
                        out.push(' ');
                        i += 1;
                    }
                    if i < b.len() {
                        out.push(' ');
                        i += 1;
                    }
                }
                out.push(' ');
                i += 1;
            } else if b.get(i + 2) == Some(&'\'') {
                out.push_str("   ");
                i += 3;
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// At `i`, `r"`, `r#…#"`, `br"` or `br#…#"`: the number of `#` and where the body starts.
fn raw_string_start(b: &[char], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    if b[j] == 'b' {
        j += 1;
    }
    if b.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while b.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (b.get(j) == Some(&'"')).then_some((hashes, j + 1))
}

/// The tokens of stripped source: identifiers (with `$` kept in `$crate`), `::`, and every other
/// non-space character on its own.
pub fn tokenize(stripped: &str) -> Vec<Token> {
    let b: Vec<char> = stripped.chars().collect();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c.is_alphanumeric()
            || c == '_'
            || (c == '$' && b.get(i + 1).is_some_and(|n| n.is_alphabetic()))
        {
            let start = i;
            i += 1;
            while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_') {
                i += 1;
            }
            tokens.push(Token {
                text: b[start..i].iter().collect(),
                line,
            });
        } else if c == ':' && b.get(i + 1) == Some(&':') {
            tokens.push(Token {
                text: "::".into(),
                line,
            });
            i += 2;
        } else {
            tokens.push(Token {
                text: c.to_string(),
                line,
            });
            i += 1;
        }
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(src: &str) -> Vec<String> {
        tokenize(&strip(src)).into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn comments_and_literals_are_not_code() {
        let src = "use crate::a; // crate::b\n/* crate::c /* nested crate::d */ */ let s = \
                   \"crate::e\";\nlet r = r#\"crate::f\"#; let c = '\"'; let l: &'a str = \
                   x::<'b>(); let e = '\\'';\n/// [`crate::g`]\nfn f() {}";
        let t = texts(src);
        let joined = t.join(" ");
        assert!(joined.contains("crate :: a"), "{joined}");
        for hidden in ["b", "c", "d", "e", "f", "g"] {
            assert!(
                !joined.contains(&format!("crate :: {hidden}")),
                "{hidden} leaked: {joined}"
            );
        }
        // Lifetimes survive, and lines are counted through stripped comments.
        assert!(joined.contains("' a"), "{joined}");
        let f = tokenize(&strip(src))
            .into_iter()
            .find(|t| t.text == "fn")
            .unwrap();
        assert_eq!(f.line, 5);
    }

    #[test]
    fn identifiers_and_paths() {
        assert_eq!(
            texts("$crate::x::{y, z}"),
            ["$crate", "::", "x", "::", "{", "y", ",", "z", "}"]
        );
        assert_eq!(texts("b\"a\\\"b\" ok br#\"x\"# r\"y\""), ["ok"]);
    }
}
