//! Spark's `Utils.redact`: a setting whose key or value matches `ember.redaction.regex` is shown
//! as `*********(redacted)` in the UI, the REST API and event logs.

/// What a redacted value is replaced with (Spark's `REDACTION_REPLACEMENT_TEXT`).
pub const REDACTION_REPLACEMENT_TEXT: &str = crate::conf::redact::REDACTED;

/// Redacts the values of `pairs` whose key or value matches `pattern` (with the configuration's
/// own [`Redactor`](crate::conf::redact::Redactor)). A pattern that does not compile redacts
/// every value: showing secrets is worse than showing nothing.
pub fn redact(
    pattern: &str,
    pairs: impl IntoIterator<Item = (String, String)>,
) -> Vec<(String, String)> {
    let redactor = crate::conf::redact::Redactor::new(pattern).ok();
    pairs
        .into_iter()
        .map(|(k, v)| match &redactor {
            Some(r) => {
                let shown = r.redact(&k, &v).into_owned();
                (k, shown)
            }
            None => (k, REDACTION_REPLACEMENT_TEXT.to_string()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPARK_DEFAULT: &str = "(?i)secret|password|token|access[.]?key|credential";

    #[test]
    fn keys_or_values_that_match_are_redacted() {
        let pairs = vec![
            (
                "ember.authenticate.secret".to_string(),
                "s3cr3t".to_string(),
            ),
            ("ember.app.name".to_string(), "wordcount".to_string()),
            ("my.S3.AccessKey".to_string(), "AKIA".to_string()),
            (
                "ember.executorEnv.X".to_string(),
                "--password=hunter2".to_string(),
            ),
            (
                "ember.hadoop.fs.s3a.access.key".to_string(),
                "AKIA".to_string(),
            ),
        ];
        let out = redact(SPARK_DEFAULT, pairs);
        assert_eq!(out[0].1, REDACTION_REPLACEMENT_TEXT);
        assert_eq!(out[1].1, "wordcount");
        assert_eq!(out[2].1, REDACTION_REPLACEMENT_TEXT);
        assert_eq!(out[3].1, REDACTION_REPLACEMENT_TEXT);
        assert_eq!(out[4].1, REDACTION_REPLACEMENT_TEXT);
    }

    #[test]
    fn a_bad_pattern_hides_everything() {
        let out = redact("(", vec![("a".to_string(), "b".to_string())]);
        assert_eq!(out[0].1, REDACTION_REPLACEMENT_TEXT);
    }
}
