//! The building blocks of the web UI's pages (Spark's `UIUtils`): escaping, the page frame with
//! its tabs, tables, progress bars, and the formats of dates, durations and sizes.
//!
//! Every string that reaches a page goes through [`esc`] (or [`Html::text`]): job descriptions,
//! RDD names, error messages and configuration values are the program's, not ours.

use std::fmt::Write;

use ember_common::bytes_to_string;

/// The style sheet of every page, inside the binary (nothing is fetched from elsewhere).
pub const CSS: &str = include_str!("assets/ember-ui.css");
/// The pages' script (auto-refresh, sortable summary tables), inside the binary.
pub const JS: &str = include_str!("assets/ember-ui.js");

/// `s` with HTML's special characters replaced, safe in text and in quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `s` as a URL query value (RFC 3986 unreserved characters kept, the rest percent-encoded).
pub fn url_param(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A page being written. Writes to a `String` cannot fail, so the helpers ignore `fmt` errors.
#[derive(Default)]
pub struct Html(pub String);

impl Html {
    /// Appends trusted markup (never data).
    pub fn raw(&mut self, s: &str) -> &mut Self {
        self.0.push_str(s);
        self
    }

    /// Appends data, escaped.
    pub fn text(&mut self, s: &str) -> &mut Self {
        self.0.push_str(&esc(s));
        self
    }

    /// A table: `headers` (already escaped markup allowed, they are ours) and rows of cells
    /// (markup built with [`esc`]).
    pub fn table(&mut self, id: &str, headers: &[&str], rows: &[Vec<String>]) -> &mut Self {
        self.table_of_class("sortable", id, headers, rows)
    }

    /// A table as [`Self::table`], with its own class (`server-sorted`: sorted by links to the
    /// server, not by the page's script).
    pub fn table_of_class(
        &mut self,
        class: &str,
        id: &str,
        headers: &[&str],
        rows: &[Vec<String>],
    ) -> &mut Self {
        let _ = write!(
            self.0,
            "<table class=\"table {}\" id=\"{}\"><thead><tr>",
            esc(class),
            esc(id)
        );
        for h in headers {
            let _ = write!(self.0, "<th>{h}</th>");
        }
        self.0.push_str("</tr></thead><tbody>");
        for row in rows {
            self.0.push_str("<tr>");
            for cell in row {
                let _ = write!(self.0, "<td>{cell}</td>");
            }
            self.0.push_str("</tr>");
        }
        self.0.push_str("</tbody></table>");
        self
    }

    /// A section title with a count, as Spark's "Active Jobs (2)".
    pub fn section(&mut self, id: &str, title: &str, count: usize) -> &mut Self {
        let _ = write!(
            self.0,
            "<h4 id=\"{}\">{} ({count})</h4>",
            esc(id),
            esc(title)
        );
        self
    }
}

/// The tabs of the UI, with their paths (Spark's `SparkUITab`s).
pub const TABS: [(&str, &str); 5] = [
    ("Jobs", "/jobs/"),
    ("Stages", "/stages/"),
    ("Storage", "/storage/"),
    ("Environment", "/environment/"),
    ("Executors", "/executors/"),
];

/// A whole page: the header with the tabs (`active` highlighted), the application's name, the
/// title and `body`. `live` pages offer auto-refresh while the application runs.
pub fn page(app_name: &str, active: &str, title: &str, live: bool, body: &str) -> String {
    let mut h = Html::default();
    h.raw("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">")
        .raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
        .raw("<link rel=\"stylesheet\" href=\"/static/ember-ui.css\">")
        .raw("<script src=\"/static/ember-ui.js\" defer></script><title>")
        .text(app_name)
        .raw(" - ")
        .text(title)
        .raw("</title></head><body><nav class=\"navbar\"><span class=\"brand\">Ember <small>")
        .text(crate::status::views::EMBER_VERSION)
        .raw("</small></span><ul class=\"tabs\">");
    for (name, path) in TABS {
        let class = if name == active { " class=\"active\"" } else { "" };
        let _ = write!(h.0, "<li{class}><a href=\"{path}\">{name}</a></li>");
    }
    h.raw("</ul><span class=\"app-name\" title=\"")
        .text(app_name)
        .raw("\">")
        .text(app_name)
        .raw(" application UI</span></nav><main>");
    if live {
        h.raw(
            "<label class=\"refresh\"><input type=\"checkbox\" id=\"auto-refresh\"> \
             refresh every 2 s</label>",
        );
    }
    h.raw("<h3>").text(title).raw("</h3>").raw(body);
    h.raw("</main></body></html>");
    h.0
}

/// A link to `path` (ours) with `label` (data).
pub fn link(path: &str, label: &str) -> String {
    format!("<a href=\"{}\">{}</a>", esc(path), esc(label))
}

/// Spark's `UIUtils.formatDate`: `yyyy/MM/dd HH:mm:ss`, here in UTC.
pub fn date(ms: u64) -> String {
    let iso = crate::util::gmt_date(ms as i64);
    // 2026-12-06T07:32:53.614GMT → 2026/12/06 07:32:53
    let (day, time) = iso.split_once('T').unwrap_or((&iso, ""));
    format!(
        "{} {}",
        day.replace('-', "/"),
        time.get(..8).unwrap_or(time)
    )
}

/// Spark's `UIUtils.formatDuration`: `123 ms`, `4.5 s`, `2.0 min`, `1.3 h`.
pub fn duration(ms: u64) -> String {
    let s = ms as f64 / 1000.0;
    if ms < 1000 {
        format!("{ms} ms")
    } else if s < 60.0 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

/// Spark's `Utils.bytesToString` (0 shows as `0.0 B`).
pub fn bytes(n: i64) -> String {
    bytes_to_string(n.max(0) as u64)
}

/// `size / records`, as Spark's task tables show shuffle and input columns (empty when none).
pub fn bytes_records(b: i64, records: i64) -> String {
    if b <= 0 && records <= 0 {
        String::new()
    } else {
        format!("{} / {records}", bytes(b))
    }
}

/// Spark's task progress bar: succeeded / total, with running tasks and failures noted.
pub fn progress(
    completed: i64,
    failed: i64,
    skipped: i64,
    killed: i64,
    active: i64,
    total: i64,
) -> String {
    let total = total.max(1);
    let done = (completed as f64 / total as f64 * 100.0).clamp(0.0, 100.0);
    let running = (active as f64 / total as f64 * 100.0).clamp(0.0, 100.0 - done);
    let mut label = format!("{completed}/{total}");
    if active > 0 {
        let _ = write!(label, " ({active} running)");
    }
    if failed > 0 {
        let _ = write!(label, " ({failed} failed)");
    }
    if skipped > 0 {
        let _ = write!(label, " ({skipped} skipped)");
    }
    if killed > 0 {
        let _ = write!(label, " ({killed} killed)");
    }
    format!(
        "<div class=\"progress\"><span class=\"progress-label\">{}</span>\
         <div class=\"bar completed\" style=\"width: {done:.1}%\"></div>\
         <div class=\"bar running\" style=\"width: {running:.1}%\"></div></div>",
        esc(&label)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(
            esc("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
        let mut h = Html::default();
        h.table("t", &["a"], &[vec![esc("<b>")]]);
        assert!(h.0.contains("<td>&lt;b&gt;</td>"));
        let p = page("<app>", "Jobs", "<t>", false, "");
        assert!(!p.contains("<app>") && !p.contains("<t>"));
    }

    #[test]
    fn formats_are_sparks() {
        assert_eq!(duration(12), "12 ms");
        assert_eq!(duration(4_500), "4.5 s");
        assert_eq!(duration(120_000), "2.0 min");
        assert_eq!(duration(4_680_000), "1.3 h");
        assert_eq!(date(1_796_542_373_614), "2026/12/06 07:32:53");
        assert_eq!(url_param("a b&c"), "a%20b%26c");
        assert_eq!(bytes(0), "0.0 B");
        assert!(progress(3, 1, 0, 0, 2, 10).contains("3/10 (2 running) (1 failed)"));
    }
}
