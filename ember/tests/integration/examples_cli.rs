//! The example programs as a user runs them: arguments, stdout, exit status.

use std::process::Command;

use crate::common::example;

fn run(name: &str, args: &[&str]) -> (i32, String, String) {
    run_with_env(name, args, &[])
}

#[test]
fn wordcount_prints_top_words_sorted_by_count_then_word() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "b a c\n  a\tb a\n\nzz yy zz yy\n").unwrap();
    let path = input.to_str().unwrap();
    let (code, out, err) = run("wordcount", &[path, "--top", "3", "--master", "local[2]"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "a\t3\nb\t2\nyy\t2\n");
    let (code, all, _) = run("wordcount", &[path, "--top=0", "--master=local[1]"]);
    assert_eq!(code, 0);
    assert_eq!(all, "a\t3\nb\t2\nyy\t2\nzz\t2\nc\t1\n");
    let (_, default_top, _) = run("wordcount", &[path]);
    assert_eq!(default_top, all, "default --top 20 prints everything here");
    let (code, cluster, err) = run(
        "wordcount",
        &[path, "--top", "0", "--master", "local-cluster[2,1,1024]"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        cluster, all,
        "two executor processes print the same as local mode"
    );

    let out_dir = dir.path().join("counts");
    let (code, _, err) = run("wordcount", &[path, "--output", out_dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let mut saved = String::new();
    for e in std::fs::read_dir(&out_dir).unwrap() {
        let p = e.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("part-")
        {
            saved.push_str(&std::fs::read_to_string(p).unwrap());
        }
    }
    let mut lines: Vec<&str> = saved.lines().collect();
    lines.sort();
    assert_eq!(lines, vec!["a\t3", "b\t2", "c\t1", "yy\t2", "zz\t2"]);
}

#[test]
fn wordcount_fails_with_a_message_and_non_zero_status() {
    let (code, out, err) = run("wordcount", &["/no/such/file.txt"]);
    assert_ne!(code, 0);
    assert!(out.is_empty());
    assert!(err.contains("/no/such/file.txt"), "{err}");
    let (code, _, err) = run("wordcount", &["x", "--master", "mesos://nope"]);
    assert_ne!(code, 0);
    assert!(err.contains("invalid master URL"), "{err}");
    let (code, _, err) = run("wordcount", &["x", "--conf", "ember.task.cpus=lots"]);
    assert_ne!(code, 0);
    assert!(err.contains("ember.task.cpus"), "{err}");
}

/// Spark's JavaPageRank on an edge list, sequentially: pages without in-links drop out after
/// the first iteration, exactly as in the distributed version.
fn sequential_pagerank(edges: &[(&str, &str)], iterations: usize) -> Vec<(String, f64)> {
    use std::collections::BTreeMap;
    let mut links: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (s, d) in edges {
        links.entry(s).or_default().push(d);
    }
    let mut ranks: BTreeMap<&str, f64> = links.keys().map(|k| (*k, 1.0)).collect();
    for _ in 0..iterations {
        let mut received: BTreeMap<&str, f64> = BTreeMap::new();
        for (page, rank) in &ranks {
            if let Some(dests) = links.get(page) {
                for d in dests {
                    *received.entry(d).or_default() += rank / dests.len() as f64;
                }
            }
        }
        ranks = received
            .into_iter()
            .map(|(k, r)| (k, 0.15 + 0.85 * r))
            .collect();
    }
    let mut v: Vec<(String, f64)> = ranks.into_iter().map(|(k, r)| (k.to_string(), r)).collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

#[test]
fn pagerank_matches_a_sequential_pagerank() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("edges.txt");
    let edges = [
        ("a", "hub"),
        ("b", "hub"),
        ("c", "hub"),
        ("hub", "a"),
        ("hub", "b"),
        ("b", "c"),
        ("c", "a"),
    ];
    let text: String = edges.iter().map(|(s, d)| format!("{s} {d}\n")).collect();
    std::fs::write(&input, text).unwrap();
    let (code, out, err) = run(
        "pagerank",
        &[
            input.to_str().unwrap(),
            "--iterations",
            "7",
            "--top",
            "10",
            "--master",
            "local[2]",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let expect: String = sequential_pagerank(&edges, 7)
        .iter()
        .map(|(p, r)| format!("{p}\t{r:.6}\n"))
        .collect();
    assert_eq!(out, expect);
}

#[test]
fn a_misspelled_key_warns_with_the_closest_known_key_and_sizes_name_what_was_set() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "a b a\n").unwrap();
    let path = input.to_str().unwrap();
    let (code, out, err) = run(
        "wordcount",
        &[
            path,
            "--master",
            "local[1]",
            "--conf",
            "ember.excutor.memory=2g",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "a\t2\nb\t1\n");
    assert!(
        err.contains(
            "unknown configuration key ember.excutor.memory (set by --conf); did you mean \
             ember.executor.memory?"
        ),
        "{err}"
    );

    // Too little memory: the message quotes what the user wrote, where they wrote it.
    let (code, _, err) = run("wordcount", &[path, "--master", "local-cluster[2,1,1]"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("local-cluster[2,1,1]")
            && err.contains("MEM field gives each executor 1 MiB")
            && err.contains("set by --master"),
        "{err}"
    );
    let (code, _, err) = run(
        "wordcount",
        &[
            path,
            "--master",
            "local[1]",
            "--conf",
            "ember.executor.memory=1k",
        ],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("ember.executor.memory")
            && err.contains("\"1k\"")
            && err.contains("set by --conf"),
        "{err}"
    );
}

fn run_with_env(name: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(example(name));
    cmd.args(args)
        // No UI: the examples of parallel tests would race for port 4040, and the one that
        // loses logs Spark's "could not bind on port 4040" warning.
        .env(
            "EMBER_CONF",
            "ember.ui.showConsoleProgress=false,ember.ui.enabled=false",
        );
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run example {name}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Piped output is plain text (no colour codes), and a normal run and its shutdown log nothing
/// at WARN or ERROR, in local mode and with executor processes.
#[test]
fn a_normal_word_count_is_quiet_and_its_piped_logs_are_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "a b a\nc b a\n".repeat(200)).unwrap();
    let path = input.to_str().unwrap();
    for master in ["local[2]", "local-cluster[2,1,1024]"] {
        let (code, out, err) = run("wordcount", &[path, "--top", "1", "--master", master]);
        assert_eq!((code, out.as_str()), (0, "a\t600\n"), "{master}: {err}");
        assert!(
            !err.lines()
                .any(|l| l.contains("WARN") || l.contains("ERROR")),
            "{master}: {err}"
        );
        let (code, _, log) = run_with_env(
            "wordcount",
            &[path, "--master", master],
            &[("EMBER_LOG", "info")],
        );
        assert_eq!(code, 0, "{log}");
        assert!(
            log.contains("INFO"),
            "{master}: the info log is there: {log}"
        );
        assert!(
            !log.contains('\u{1b}'),
            "{master}: colour codes in piped logs: {log:?}"
        );
        assert!(
            !log.lines()
                .any(|l| l.contains("WARN") || l.contains("ERROR")),
            "{master}: {log}"
        );
    }
}

#[test]
fn executor_without_driver_prints_the_executor_usage() {
    let (code, out, err) = run("wordcount", &["executor"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("usage: wordcount executor --driver HOST:PORT"),
        "{err}"
    );
    assert!(!err.contains("Input path does not exist"), "{err}");
    let (code, _, err) = run("wordcount", &["executor", "--cores", "2"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("usage: wordcount executor --driver HOST:PORT"),
        "{err}"
    );
}

#[test]
fn a_thread_count_the_machine_cannot_give_is_an_error_naming_the_master_url() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "a\n").unwrap();
    // Far above any machine's per-process thread limit (this one's is reported in the message).
    let (code, out, err) = run(
        "wordcount",
        &[input.to_str().unwrap(), "--master", "local[100000000]"],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("invalid master URL \"local[100000000]\"")
            && err.contains("task threads are more than this machine gives"),
        "{err}"
    );
}

#[test]
fn aggregate_sums_a_column_per_key_of_parquet_csv_and_json_lines() {
    let sales = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/data/sales");
    let sales = sales.to_str().unwrap();
    for master in ["local[2]", "local-cluster[2,1,1024]"] {
        // Hive partitions: the partition column is the key; integers stay integers.
        let (code, out, err) = run(
            "aggregate",
            &[
                sales, "--key", "month", "--value", "qty", "--master", master,
            ],
        );
        assert_eq!(code, 0, "{master}: {err}");
        assert_eq!(
            out, "1\t11\n11\t12\n12\t10\n",
            "{master}: sorted by key as a string"
        );
        let (code, out, err) = run(
            "aggregate",
            &[sales, "--key=product", "--value=price", "--master", master],
        );
        assert_eq!(code, 0, "{master}: {err}");
        assert_eq!(
            out,
            "apple\t12.75\nbanana\t21.75\ncherry\t18.75\ndate\t15.75\n"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("csv");
    std::fs::create_dir(&csv).unwrap();
    std::fs::write(csv.join("a.csv"), "k,v,w\na,1,x\nb,2.5,y\n,4,z\n").unwrap();
    std::fs::write(csv.join("b.csv.gz"), gzip(b"k,v,w\na,3,x\nc,,y\n")).unwrap();
    std::fs::write(csv.join("_SUCCESS"), "").unwrap();
    let (code, out, err) = run(
        "aggregate",
        &[csv.to_str().unwrap(), "--key", "k", "--value", "v"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "a\t4\nb\t2.5\n", "null keys and values skipped");
    // A quoted line break between the key and the value: one record, not two broken ones.
    let quoted = dir.path().join("quoted.csv");
    std::fs::write(&quoted, "k,w,v\nd,\"p\nq\",9\nd,r,1\n").unwrap();
    let (code, out, err) = run(
        "aggregate",
        &[quoted.to_str().unwrap(), "--key", "k", "--value", "v"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "d\t10\n", "a field with a line break is read whole");
    let json = dir.path().join("e.jsonl");
    std::fs::write(
        &json,
        "{\"k\":\"x\",\"v\":1}\n{\"k\":\"x\",\"v\":null}\n{\"k\":null,\"v\":5}\n\
         {\"k\":\"y\",\"v\":-2}\n{\"k\":\"x\",\"v\":2.0}\n",
    )
    .unwrap();
    let (code, out, err) = run(
        "aggregate",
        &[json.to_str().unwrap(), "--key", "k", "--value", "v"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out, "x\t3\ny\t-2\n",
        "a float value makes the sum a float, printed with {{}}"
    );
    let (code, _, err) = run("aggregate", &[json.to_str().unwrap(), "--key", "k"]);
    assert_ne!(code, 0);
    assert!(err.contains("usage: aggregate"), "{err}");
}

#[test]
fn aggregate_fails_naming_an_unknown_or_non_numeric_column() {
    let sales = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/data/sales");
    let sales = sales.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("a.csv");
    std::fs::write(&csv, "k,v,w\na,1,x\nb,2,y\n").unwrap();
    let json = dir.path().join("e.jsonl");
    std::fs::write(&json, "{\"k\":\"x\",\"v\":1}\n{\"k\":\"y\",\"w\":true}\n").unwrap();
    let unresolved = "cannot be resolved. Did you mean one of the following?";
    for master in ["local[2]", "local-cluster[2,1,1024]"] {
        let (code, out, err) = run(
            "aggregate",
            &[
                sales, "--key", "product", "--value", "qtty", "--master", master,
            ],
        );
        assert_eq!((code, out.as_str()), (1, ""), "{master}: {err}");
        assert!(
            err.contains("--value: [UNRESOLVED_COLUMN.WITH_SUGGESTION]")
                && err.contains("with name `qtty` "),
            "{master}: {err}"
        );
        assert!(
            err.contains("[`id`, `month`, `price`, `product`, `qty`, `year`]"),
            "{master}: the Parquet columns and the partition columns: {err}"
        );
        let (code, out, err) = run(
            "aggregate",
            &[
                sales, "--key", "product", "--value", "product", "--master", master,
            ],
        );
        assert_eq!((code, out.as_str()), (1, ""), "{master}: {err}");
        assert!(
            err.contains("the column `product` is not numeric: it holds \""),
            "{master}: {err}"
        );
    }
    let (code, out, err) = run(
        "aggregate",
        &[csv.to_str().unwrap(), "--key", "K", "--value", "v"],
    );
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(
        err.contains("--key: ")
            && err.contains("with name `K` ")
            && err.contains(unresolved)
            && err.contains("[`k`, `v`, `w`]"),
        "{err}"
    );
    let (code, _, err) = run(
        "aggregate",
        &[csv.to_str().unwrap(), "--key", "k", "--value", "w"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("the column `w` is not numeric: it holds \"x\""),
        "{err}"
    );
    // JSON lines: the columns are the union over the lines; a bool is not a number.
    let (code, _, err) = run(
        "aggregate",
        &[json.to_str().unwrap(), "--key", "k", "--value", "z"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("[`k`, `v`, `w`]"), "{err}");
    let (code, _, err) = run(
        "aggregate",
        &[json.to_str().unwrap(), "--key", "k", "--value", "w"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("the column `w` is not numeric: it holds true"),
        "{err}"
    );
    // A known column that is null everywhere is no error: nothing to print.
    let nulls = dir.path().join("n.jsonl");
    std::fs::write(&nulls, "{\"k\":\"x\",\"v\":null}\n").unwrap();
    let (code, out, err) = run(
        "aggregate",
        &[nulls.to_str().unwrap(), "--key", "k", "--value", "v"],
    );
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}
