//! `text_file` and `save_as_text_file`, end to end.

use crate::common::{for_each_master, sorted};
use ember::prelude::*;

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn text_file_reads_files_directories_and_globs_in_line_aligned_splits() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..5000 {
        text.push_str(&format!("line {i} {}\n", "x".repeat(i % 17)));
    }
    let f = write(dir.path(), "a.txt", &text);
    write(dir.path(), "b.txt", "one\ntwo\r\nthree");
    write(dir.path(), "_ignored", "hidden\n");
    let expected_a: Vec<String> = text.lines().map(str::to_string).collect();
    for_each_master(|ctx, m| {
        for parts in [1, 3, 8, 50] {
            let rdd = ctx.text_file(f.to_str().unwrap(), parts).unwrap();
            assert!(
                rdd.num_partitions() >= parts,
                "{m}: {} < {parts}",
                rdd.num_partitions()
            );
            assert_eq!(
                rdd.collect().unwrap(),
                expected_a,
                "{m} with {parts} partitions"
            );
        }
        let all = ctx
            .text_file(dir.path().to_str().unwrap(), 4)
            .unwrap()
            .collect()
            .unwrap();
        assert_eq!(all.len(), 5003, "a directory's visible files");
        assert!(all.contains(&"two".to_string()) && !all.contains(&"hidden".to_string()));
        let glob = format!("{}/b*.txt", dir.path().display());
        assert_eq!(
            ctx.text_file(&glob, None).unwrap().collect().unwrap(),
            vec!["one", "two", "three"]
        );
        let st = ctx.status().metrics;
        assert!(st.input_records_read > 0 && st.input_bytes_read > 0);
    });
}

/// A line's words with a count of one, lent from the line.
fn lent_words(line: &str) -> impl Iterator<Item = (&str, u64)> + '_ {
    line.split_whitespace().map(|w| (w, 1))
}

#[test]
fn lent_lines_give_the_same_words_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("\u{feff}first line\r\n");
    for i in 0..4000 {
        text.push_str(&format!("w{} w{} {}\n", i % 31, i % 7, "y".repeat(i % 40)));
    }
    text.push_str("last\rline without end");
    let f = write(dir.path(), "words.txt", &text);
    let mut expect = std::collections::BTreeMap::new();
    for w in text.trim_start_matches('\u{feff}').split_whitespace() {
        *expect.entry(w.to_string()).or_insert(0u64) += 1;
    }
    let expect: Vec<(String, u64)> = expect.into_iter().collect();
    for_each_master(|ctx, m| {
        for parts in [1, 5] {
            let before = ctx.status().metrics;
            let lines = ctx.text_file(f.to_str().unwrap(), parts).unwrap();
            let counts = lines
                .flat_map_ref(lent_words)
                .reduce_by_key(|a, b| a + b, 3)
                .collect()
                .unwrap();
            assert_eq!(sorted(&counts), expect, "{m} with {parts} partitions");
            let after = ctx.status().metrics;
            assert_eq!(
                after.input_records_read - before.input_records_read,
                4003,
                "{m}"
            );
            assert!(
                after.input_bytes_read - before.input_bytes_read >= text.len() as u64,
                "{m}"
            );
        }
    });
}

#[test]
fn text_file_errors_name_the_file_and_offset() {
    let ctx = crate::common::context("local[2]", &[]);
    let missing = ctx
        .text_file("/nonexistent/ember/input.txt", None)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        missing.contains("/nonexistent/ember/input.txt"),
        "{missing}"
    );
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.txt");
    std::fs::write(&p, b"good line\nbad \xff line\n").unwrap();
    // By default the bad byte reads as U+FFFD (Hadoop's `Text`); `strict_utf8` fails instead.
    let lines = ctx
        .text_file(p.to_str().unwrap(), 1)
        .unwrap()
        .collect()
        .unwrap();
    assert_eq!(lines, ["good line", "bad \u{fffd} line"]);
    let err = ctx
        .text_file(p.to_str().unwrap(), 1)
        .unwrap()
        .strict_utf8()
        .count()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("invalid UTF-8") && err.contains("bad.txt") && err.contains("byte offset 14"),
        "{err}"
    );
    let mut lossy_words = ctx
        .text_file(p.to_str().unwrap(), 1)
        .unwrap()
        .flat_map_ref(lent_words)
        .reduce_by_key(|a, b| a + b, 1)
        .collect()
        .unwrap();
    lossy_words.sort();
    let want: Vec<(String, u64)> = [("bad", 1), ("good", 1), ("line", 2), ("\u{fffd}", 1)]
        .iter()
        .map(|&(w, n)| (w.to_string(), n))
        .collect();
    assert_eq!(lossy_words, want, "lent lines decode as owned ones");
    let lent = ctx
        .text_file(p.to_str().unwrap(), 1)
        .unwrap()
        .strict_utf8()
        .flat_map_ref(lent_words)
        .reduce_by_key(|a, b| a + b, 1)
        .count();
    let err = lent.unwrap_err().to_string();
    assert!(
        err.contains("invalid UTF-8") && err.contains("byte offset 14"),
        "{err}"
    );
    ctx.stop();
}

#[test]
fn save_as_text_file_commits_on_success_only() {
    let dir = tempfile::tempdir().unwrap();
    for_each_master(|ctx, m| {
        let out = dir
            .path()
            .join(format!("out-{}", m.replace(['[', ']', ','], "_")));
        let out_s = out.to_str().unwrap();
        let rdd = ctx.parallelize((0..100u32).collect(), 4).map(|x| x * 2);
        rdd.save_as_text_file(out_s).unwrap();
        assert!(out.join("_SUCCESS").exists());
        assert!(!out.join("_temporary").exists());
        let mut names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                "_SUCCESS",
                "part-00000",
                "part-00001",
                "part-00002",
                "part-00003"
            ]
        );
        let back = ctx
            .text_file(out_s, None)
            .unwrap()
            .map(|l: String| l.parse::<u32>().unwrap())
            .collect()
            .unwrap();
        assert_eq!(sorted(&back), (0..100).map(|x| x * 2).collect::<Vec<_>>());
        // An existing directory is an error, not overwritten.
        let again = rdd.save_as_text_file(out_s).unwrap_err();
        assert!(matches!(again, EmberError::OutputExists(_)), "{again}");
        // A failed job leaves nothing behind.
        let failed = dir
            .path()
            .join(format!("failed-{}", m.replace(['[', ']', ','], "_")));
        let err = ctx
            .parallelize((0..100u32).collect(), 4)
            .map(|x| {
                assert!(x != 77, "no 77s");
                x
            })
            .save_as_text_file(failed.to_str().unwrap());
        assert!(err.is_err());
        assert!(!failed.exists(), "{m}: failed job left {failed:?}");
    });
}

/// Spark's commit protocol on job abort: the action returns only after the abort has removed
/// what the job wrote, and tasks of the aborted job still running cannot bring it back, so the
/// same save run again (without the fault) succeeds and nothing of the first one remains.
#[test]
fn a_failed_save_leaves_nothing_and_the_same_save_then_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    for_each_master(|ctx, m| {
        for round in 0..15 {
            let out = dir
                .path()
                .join(format!("out-{}-{round}", m.replace(['[', ']', ','], "_")));
            let out_s = out.to_str().unwrap();
            // Partition 5 of 16 fails at once while the others are being launched and written.
            let err = ctx
                .parallelize((0..1600u32).collect(), 16)
                .map(|x| {
                    assert!(x / 100 != 5, "fault in partition 5");
                    x
                })
                .save_as_text_file(out_s)
                .unwrap_err();
            assert!(
                err.to_string().contains("fault in partition 5"),
                "{m}: {err}"
            );
            assert!(
                !out.exists(),
                "{m} round {round}: the failed save left {:?}",
                std::fs::read_dir(&out).map(|d| d.count())
            );
            ctx.parallelize((0..1600u32).collect(), 16)
                .save_as_text_file(out_s)
                .unwrap_or_else(|e| panic!("{m} round {round}: retry failed: {e}"));
            assert!(!out.join("_temporary").exists(), "{m} round {round}");
            let back = ctx
                .text_file(out_s, None)
                .unwrap()
                .map(|l: String| l.parse::<u32>().unwrap())
                .collect()
                .unwrap();
            assert_eq!(
                sorted(&back),
                (0..1600).collect::<Vec<_>>(),
                "{m} round {round}"
            );
        }
    });
}
