//! Spark's redaction of configuration values (`spark.redaction.regex`, `Utils.redact`): when the
//! regex matches a key or its value, the value is shown as [`REDACTED`], wherever configuration is
//! shown (`EmberConf`'s `Debug` and `to_debug_string`, configuration errors).

use std::borrow::Cow;
use std::sync::OnceLock;

use regex::Regex;

/// What Spark shows instead of a redacted value (`Utils.REDACTION_REPLACEMENT_TEXT`).
pub const REDACTED: &str = ember_net::secret::REDACTED;

/// Spark's default `spark.redaction.regex`.
pub const DEFAULT_PATTERN: &str = "(?i)secret|password|token|access[.]?key|credential";

/// A compiled redaction pattern.
#[derive(Clone, Debug)]
pub struct Redactor(Regex);

impl Redactor {
    /// Compiles `pattern`; the error text is the regex crate's.
    pub fn new(pattern: &str) -> Result<Redactor, String> {
        Regex::new(pattern).map(Redactor).map_err(|e| e.to_string())
    }

    /// The default pattern, compiled once.
    pub fn default_pattern() -> &'static Redactor {
        static DEFAULT: OnceLock<Redactor> = OnceLock::new();
        DEFAULT.get_or_init(|| {
            Redactor::new(DEFAULT_PATTERN)
                .unwrap_or_else(|e| unreachable!("Spark's default redaction regex compiles: {e}"))
        })
    }

    /// `value`, or [`REDACTED`] when the pattern matches the key or the value (Spark checks both:
    /// a secret may sit under an innocent key, as in `--conf x=password=...`).
    pub fn redact<'a>(&self, key: &str, value: &'a str) -> Cow<'a, str> {
        if self.0.is_match(key) || self.0.is_match(value) {
            Cow::Borrowed(REDACTED)
        } else {
            Cow::Borrowed(value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparks_default_redacts_by_key_or_value_and_keeps_the_rest() {
        let r = Redactor::default_pattern();
        for (k, v) in [
            ("ember.authenticate.secret", "hunter2"),
            ("fs.s3a.access.key", "AKIA1"),
            ("fs.s3a.accesskey", "AKIA2"),
            ("db.PASSWORD", "p"),
            ("my.setting", "token=abc"),
            ("x.credentials.file", "/etc/creds"),
        ] {
            assert_eq!(r.redact(k, v), REDACTED, "{k}");
        }
        assert_eq!(r.redact("ember.executor.cores", "4"), "4");
        let custom = Redactor::new("(?i)^my\\.").unwrap();
        assert_eq!(custom.redact("my.thing", "v"), REDACTED);
        assert_eq!(
            custom.redact("ember.authenticate.secret", "v"),
            "v",
            "a custom pattern replaces the default"
        );
        assert!(Redactor::new("(unclosed").is_err());
    }
}
