//! The UI's drawings, as inline SVG made on the server (Spark draws them in the browser with
//! dagre-d3 and vis.js; Ember ships no such library): the stage DAG from the RDD lineage the
//! store knows, and the event timelines of the Jobs and Job pages.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use crate::listener::events::RddInfo;

use super::html::esc;

const NODE_W: u32 = 190;
const NODE_H: u32 = 42;
const GAP_X: u32 = 24;
const GAP_Y: u32 = 34;
const PAD: u32 = 14;

/// One stage's RDDs laid out top (sources) to bottom (the stage's RDD), as SVG elements placed
/// at `(x0, y0)`; returns the elements and the cluster's width and height.
fn stage_cluster(
    stage_id: usize,
    rdds: &[RddInfo],
    parent_stages: &[usize],
    x0: u32,
    y0: u32,
) -> (String, u32, u32) {
    let ids: BTreeSet<usize> = rdds.iter().map(|r| r.id).collect();
    let by_id: BTreeMap<usize, &RddInfo> = rdds.iter().map(|r| (r.id, r)).collect();
    // Depth: the longest chain of parents inside the stage (ids grow along the lineage, so
    // visiting by id visits parents first).
    let mut depth: BTreeMap<usize, u32> = BTreeMap::new();
    for (&id, r) in &by_id {
        let d = r
            .parent_ids
            .iter()
            .filter(|p| ids.contains(p))
            .map(|p| depth.get(p).copied().unwrap_or(0) + 1)
            .max()
            .unwrap_or(0);
        depth.insert(id, d);
    }
    let shuffle_row = u32::from(!parent_stages.is_empty());
    let mut rows: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (&id, &d) in &depth {
        rows.entry(d + shuffle_row).or_default().push(id);
    }
    let widest = rows.values().map(Vec::len).max().unwrap_or(1).max(1) as u32;
    let n_rows = rows.keys().max().map_or(1, |m| m + 1).max(1);
    let width = PAD * 2 + widest * NODE_W + (widest - 1) * GAP_X;
    let height = PAD * 2 + 18 + n_rows * NODE_H + (n_rows - 1) * GAP_Y;
    let mut pos: BTreeMap<usize, (u32, u32)> = BTreeMap::new();
    for (&row, members) in &rows {
        let row_w = members.len() as u32 * NODE_W + (members.len() as u32 - 1) * GAP_X;
        let start = x0 + (width - row_w) / 2;
        for (i, id) in members.iter().enumerate() {
            let x = start + i as u32 * (NODE_W + GAP_X);
            let y = y0 + PAD + 18 + row * (NODE_H + GAP_Y);
            pos.insert(*id, (x, y));
        }
    }
    let mut s = String::new();
    let _ = write!(
        s,
        "<g class=\"stage-cluster\" id=\"stage-{stage_id}\"><rect x=\"{x0}\" y=\"{y0}\" \
         width=\"{width}\" height=\"{height}\" rx=\"6\" fill=\"#fff7f2\" stroke=\"#e4a788\"/>\
         <text x=\"{}\" y=\"{}\" font-size=\"13\" fill=\"#a0421b\">Stage {stage_id}</text>",
        x0 + 8,
        y0 + 16
    );
    let shuffle_box = (!parent_stages.is_empty()).then(|| {
        let x = x0 + (width - NODE_W) / 2;
        let y = y0 + PAD + 18;
        let names: Vec<String> = parent_stages.iter().map(|p| format!("stage {p}")).collect();
        let _ = write!(
            s,
            "<rect class=\"shuffle\" x=\"{x}\" y=\"{y}\" width=\"{NODE_W}\" height=\"{NODE_H}\" \
             rx=\"4\" fill=\"#fff\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">shuffle read from \
             {}</text>",
            x + NODE_W / 2,
            y + 25,
            esc(&names.join(", "))
        );
        (x + NODE_W / 2, y + NODE_H)
    });
    // Edges first, so that nodes cover their ends.
    for (&id, r) in &by_id {
        let (cx, cy) = pos[&id];
        let to = (cx + NODE_W / 2, cy);
        let mut outside = false;
        for p in &r.parent_ids {
            if let Some(&(px, py)) = pos.get(p) {
                edge(&mut s, (px + NODE_W / 2, py + NODE_H), to);
            } else {
                outside = true;
            }
        }
        if let (true, Some(from)) = (outside, shuffle_box) {
            edge(&mut s, from, to);
        }
    }
    for (&id, r) in &by_id {
        let (x, y) = pos[&id];
        let cached = r.storage_level.is_valid();
        let fill = if cached { "#d9f2d9" } else { "#e8f1fa" };
        let _ = write!(
            s,
            "<g class=\"rdd\" id=\"rdd-{id}\"><title>{}</title><rect x=\"{x}\" y=\"{y}\" \
             width=\"{NODE_W}\" height=\"{NODE_H}\" rx=\"4\" fill=\"{fill}\" \
             stroke=\"#6b94b8\"/><text x=\"{}\" y=\"{}\" font-size=\"12\" \
             text-anchor=\"middle\">{} [{id}]</text><text x=\"{}\" y=\"{}\" font-size=\"10\" \
             fill=\"#666\" text-anchor=\"middle\">{}</text>",
            esc(&format!(
                "{} [{id}] {} partitions{}\n{}",
                r.name,
                r.num_partitions,
                if cached { ", cached" } else { "" },
                r.callsite
            )),
            x + NODE_W / 2,
            y + 17,
            esc(&shorten(&r.name, 22)),
            x + NODE_W / 2,
            y + 33,
            esc(&shorten(&r.callsite, 30)),
        );
        if cached {
            let _ = write!(
                s,
                "<circle cx=\"{}\" cy=\"{}\" r=\"4\" fill=\"#2e8b57\"/>",
                x + 9,
                y + 9
            );
        }
        s.push_str("</g>");
    }
    s.push_str("</g>");
    (s, width, height)
}

fn edge(s: &mut String, from: (u32, u32), to: (u32, u32)) {
    let _ = write!(
        s,
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#555\" \
         marker-end=\"url(#arrow)\"/>",
        from.0,
        from.1,
        to.0,
        to.1.saturating_sub(2)
    );
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

const ARROW: &str = "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" \
    markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" \
    fill=\"#555\"/></marker></defs>";

/// One stage of the DAG visualization: what the stage is given to draw, and where.
pub struct DagStage<'a> {
    /// The stage's id.
    pub stage_id: usize,
    /// Its RDDs (from `StageInfo::rdd_infos`).
    pub rdds: &'a [RddInfo],
    /// The stages it reads shuffle output of.
    pub parents: &'a [usize],
}

/// The DAG of one or more stages, side by side (Spark's "DAG Visualization").
pub fn dag(stages: &[DagStage<'_>]) -> String {
    let mut body = String::new();
    let (mut x, mut h) = (8u32, 0u32);
    for st in stages {
        let (g, w, ht) = stage_cluster(st.stage_id, st.rdds, st.parents, x, 8);
        body.push_str(&g);
        x += w + 28;
        h = h.max(ht);
    }
    let (w, h) = (x.max(200), h + 16);
    format!(
        "<div class=\"dag\"><svg class=\"dag-viz\" xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">{ARROW}{body}</svg></div>"
    )
}

/// A bar of a timeline: a job or a stage.
pub struct Bar {
    /// Its label.
    pub label: String,
    /// From and to, epoch ms (`end` is now for a running one).
    pub start: u64,
    pub end: u64,
    /// `succeeded`, `failed` or `running`.
    pub status: &'static str,
    /// Where a click leads.
    pub href: String,
}

/// A point event of a timeline: an executor added or removed.
pub struct Marker {
    /// When.
    pub time: u64,
    /// What.
    pub label: String,
    /// Whether it is a removal.
    pub removed: bool,
}

/// An event timeline (Spark's "Event Timeline"): executors' arrivals and departures on the
/// first lane, then one bar per job (or stage) on lanes of their own.
pub fn timeline(start: u64, end: u64, markers: &[Marker], bars: &[Bar]) -> String {
    const W: f64 = 1000.0;
    const LEFT: f64 = 110.0;
    const LANE: u32 = 22;
    let end = end.max(start + 1);
    let span = (end - start) as f64;
    let x = |t: u64| LEFT + (t.saturating_sub(start) as f64 / span) * (W - LEFT - 10.0);
    let height = 40 + LANE * (1 + bars.len() as u32) + 10;
    let mut s = String::new();
    let _ = write!(
        s,
        "<div class=\"timeline\"><svg class=\"timeline-viz\" xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"100%\" height=\"{height}\" viewBox=\"0 0 {W} {height}\" \
         preserveAspectRatio=\"xMinYMin meet\">"
    );
    // The axis: five ticks with the time of day.
    for i in 0..=4u64 {
        let t = start + (end - start) * i / 4;
        let tx = x(t);
        let _ = write!(
            s,
            "<line x1=\"{tx:.1}\" y1=\"18\" x2=\"{tx:.1}\" y2=\"{}\" stroke=\"#e3e3e3\"/>\
             <text x=\"{tx:.1}\" y=\"13\" font-size=\"10\" fill=\"#666\" \
             text-anchor=\"middle\">{}</text>",
            height - 6,
            esc(super::html::date(t).get(11..).unwrap_or(""))
        );
    }
    let lane_y = |i: u32| 24 + i * LANE;
    let _ = write!(
        s,
        "<text x=\"4\" y=\"{}\" font-size=\"11\">Executors</text>",
        lane_y(0) + 14
    );
    for m in markers {
        let color = if m.removed { "#c0392b" } else { "#2e86c1" };
        let mx = x(m.time);
        let _ = write!(
            s,
            "<g class=\"executor-event\"><title>{}</title><circle cx=\"{mx:.1}\" cy=\"{}\" \
             r=\"5\" fill=\"{color}\"/></g>",
            esc(&m.label),
            lane_y(0) + 10
        );
    }
    for (i, b) in bars.iter().enumerate() {
        let y = lane_y(i as u32 + 1);
        let (x1, x2) = (x(b.start), x(b.end.max(b.start)));
        let color = match b.status {
            "failed" => "#e6a0a0",
            "running" => "#a9cbe8",
            _ => "#9fd39f",
        };
        let _ = write!(
            s,
            "<a href=\"{}\"><g class=\"timeline-bar {}\"><title>{}</title>\
             <rect x=\"{x1:.1}\" y=\"{}\" width=\"{:.1}\" height=\"16\" rx=\"2\" \
             fill=\"{color}\" stroke=\"#777\"/><text x=\"4\" y=\"{}\" font-size=\"11\">{}</text>\
             </g></a>",
            esc(&b.href),
            b.status,
            esc(&b.label),
            y + 2,
            (x2 - x1).max(2.0),
            y + 14,
            esc(&shorten(&b.label, 16))
        );
    }
    s.push_str("</svg></div>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StorageLevel;

    fn rdd(id: usize, parents: &[usize], name: &str) -> RddInfo {
        RddInfo {
            id,
            name: name.into(),
            num_partitions: 2,
            storage_level: StorageLevel::NONE,
            parent_ids: parents.to_vec(),
            callsite: "map at x.rs:1".into(),
        }
    }

    #[test]
    fn a_stage_dag_draws_every_rdd_and_each_edge() {
        let rdds = [rdd(0, &[], "<text>"), rdd(1, &[0], "map"), rdd(3, &[1, 2], "join")];
        let svg = dag(&[DagStage {
            stage_id: 4,
            rdds: &rdds,
            parents: &[2],
        }]);
        assert_eq!(svg.matches("class=\"rdd\"").count(), 3);
        // 0→1, 1→3, and the shuffle read (RDD 2 is another stage's) → 3.
        assert_eq!(svg.matches("<line").count(), 3);
        assert!(svg.contains("shuffle read from stage 2"));
        assert!(svg.contains("&lt;text&gt;") && !svg.contains("<text>"));
    }

    #[test]
    fn a_timeline_has_a_bar_per_job() {
        let bars = vec![Bar {
            label: "Job 0 <x>".into(),
            start: 10,
            end: 50,
            status: "running",
            href: "/jobs/job/?id=0".into(),
        }];
        let m = [Marker {
            time: 5,
            label: "Executor driver added".into(),
            removed: false,
        }];
        let svg = timeline(0, 100, &m, &bars);
        assert_eq!(svg.matches("timeline-bar").count(), 1);
        assert!(svg.contains("Job 0 &lt;x&gt;"));
    }
}
