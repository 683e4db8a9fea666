//! The UI's drawings, as inline SVG made on the server (Spark draws them in the browser with
//! dagre-d3 and vis.js; Ember ships no such library): the stage DAG from the RDD lineage the
//! store knows, the event timelines of the Jobs and Job pages, and the task timeline of the
//! Stage page.

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
    axis(&mut s, start, end, height - 6, &x);
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

/// The phases of a task's bar on the stage page's timeline, in Spark's order, with Spark's
/// names and CSS classes (`StagePage.makeTimeline`) and the colours of its legend.
pub const TASK_PHASES: [(&str, &str, &str); 7] = [
    ("Scheduler Delay", "scheduler-delay-proportion", "#80b1d3"),
    ("Task Deserialization Time", "deserialization-time-proportion", "#fb8072"),
    ("Shuffle Read Time", "shuffle-read-time-proportion", "#fdb462"),
    ("Executor Computing Time", "executor-runtime-proportion", "#b3de69"),
    ("Shuffle Write Time", "shuffle-write-time-proportion", "#ffed6f"),
    ("Result Serialization Time", "serialization-time-proportion", "#bc80bd"),
    ("Getting Result Time", "getting-result-time-proportion", "#8dd3c7"),
];

/// A task on the stage page's timeline.
pub struct TaskBar {
    /// Its tooltip's first line (`Task 3 (attempt 0)`).
    pub label: String,
    /// `SUCCESS`, `RUNNING`, `FAILED`, …
    pub status: String,
    /// From and to, epoch ms (`end` is now for a running one).
    pub start: u64,
    pub end: u64,
    /// Milliseconds of each of [`TASK_PHASES`]; `None` for a phase Ember does not measure.
    pub phases: [Option<u64>; 7],
}

/// The tasks of one executor, drawn as one group of lanes.
pub struct TaskGroup {
    /// `Executor 1 / host`.
    pub label: String,
    /// Its tasks, in any order.
    pub tasks: Vec<TaskBar>,
}

/// Lanes for bars that must not overlap: each goes on the first lane free at its start.
fn pack_lanes(bars: &[(u64, u64)]) -> (Vec<u32>, u32) {
    let mut order: Vec<usize> = (0..bars.len()).collect();
    order.sort_by_key(|&i| (bars[i].0, bars[i].1));
    let mut lane_end: Vec<u64> = Vec::new();
    let mut lane = vec![0u32; bars.len()];
    for i in order {
        let (start, end) = bars[i];
        let free = lane_end.iter().position(|&e| e <= start);
        let l = free.unwrap_or(lane_end.len());
        if l == lane_end.len() {
            lane_end.push(end);
        } else {
            lane_end[l] = end;
        }
        lane[i] = l as u32;
    }
    (lane, lane_end.len() as u32)
}

/// The stage page's task timeline (Spark's `StagePage` "Event Timeline"): a group of lanes per
/// executor, a bar per task split into [`TASK_PHASES`] by their share of its duration, as
/// Spark's `toProportion` splits it, and the legend.
pub fn task_timeline(start: u64, end: u64, groups: &[TaskGroup]) -> String {
    const W: f64 = 1000.0;
    const LEFT: f64 = 150.0;
    const LANE: u32 = 20;
    let end = end.max(start + 1);
    let span = (end - start) as f64;
    let x = |t: u64| LEFT + (t.saturating_sub(start) as f64 / span) * (W - LEFT - 10.0);
    let packed: Vec<(Vec<u32>, u32)> = groups
        .iter()
        .map(|g| pack_lanes(&g.tasks.iter().map(|t| (t.start, t.end)).collect::<Vec<_>>()))
        .collect();
    let lanes: u32 = packed.iter().map(|(_, n)| (*n).max(1)).sum();
    let legend_y = 24 + lanes * LANE + 8 * groups.len() as u32 + 6;
    let height = legend_y + 24;
    let mut s = String::new();
    let _ = write!(
        s,
        "<div class=\"timeline\"><svg class=\"task-timeline-viz\" \
         xmlns=\"http://www.w3.org/2000/svg\" width=\"100%\" height=\"{height}\" \
         viewBox=\"0 0 {W} {height}\" preserveAspectRatio=\"xMinYMin meet\">"
    );
    axis(&mut s, start, end, legend_y - 4, &x);
    let mut y = 24;
    for (g, (lane_of, n)) in groups.iter().zip(&packed) {
        let _ = write!(
            s,
            "<g class=\"executor-group\"><text x=\"4\" y=\"{}\" font-size=\"11\">{}</text>",
            y + 14,
            esc(&shorten(&g.label, 24))
        );
        for (t, lane) in g.tasks.iter().zip(lane_of) {
            task_bar(&mut s, t, y + lane * LANE, &x);
        }
        s.push_str("</g>");
        y += (*n).max(1) * LANE + 8;
    }
    // The legend, as Spark's: one swatch per phase.
    let mut lx = 4.0;
    for (name, class, color) in TASK_PHASES {
        let _ = write!(
            s,
            "<rect class=\"{class}\" x=\"{lx:.1}\" y=\"{legend_y}\" width=\"12\" \
             height=\"12\" fill=\"{color}\"/><text x=\"{:.1}\" y=\"{}\" \
             font-size=\"10\">{name}</text>",
            lx + 16.0,
            legend_y + 10
        );
        lx += 16.0 + name.len() as f64 * 5.6 + 12.0;
    }
    s.push_str("</svg></div>");
    s
}

/// One task: its phases side by side, each as wide as its share of the task's duration; what
/// the measured phases leave is executor computing time (Spark's `100 - …` proportion).
fn task_bar(s: &mut String, t: &TaskBar, y: u32, x: &dyn Fn(u64) -> f64) {
    let (x1, x2) = (x(t.start), x(t.end.max(t.start)));
    let width = (x2 - x1).max(2.0);
    let total = t.end.saturating_sub(t.start);
    let mut tip = format!("{}\nStatus: {}", t.label, t.status);
    for ((name, _, _), ms) in TASK_PHASES.iter().zip(&t.phases) {
        match ms {
            Some(ms) => {
                let _ = write!(tip, "\n{name}: {ms} ms");
            }
            None => {
                let _ = write!(tip, "\n{name}: not measured");
            }
        }
    }
    let _ = write!(
        s,
        "<g class=\"task-bar\"><title>{}</title><rect x=\"{x1:.1}\" y=\"{}\" \
         width=\"{width:.1}\" height=\"14\" fill=\"#fff\" stroke=\"#777\"/>",
        esc(&tip),
        y + 2
    );
    if total > 0 {
        let share = |ms: u64| (ms as f64 / total as f64).min(1.0);
        let measured: f64 = t
            .phases
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 3)
            .map(|(_, ms)| share(ms.unwrap_or(0)))
            .sum();
        let mut pos = x1;
        for (i, ((_, class, color), ms)) in TASK_PHASES.iter().zip(&t.phases).enumerate() {
            let p = if i == 3 {
                (1.0 - measured).max(0.0)
            } else {
                share(ms.unwrap_or(0))
            };
            let w = p * width;
            if w > 0.0 {
                let _ = write!(
                    s,
                    "<rect class=\"{class}\" x=\"{pos:.1}\" y=\"{}\" width=\"{w:.1}\" \
                     height=\"14\" fill=\"{color}\"/>",
                    y + 2
                );
            }
            pos += w;
        }
    }
    s.push_str("</g>");
}

/// Five ticks with the time of day, and their lines down to `bottom`.
fn axis(s: &mut String, start: u64, end: u64, bottom: u32, x: &dyn Fn(u64) -> f64) {
    for i in 0..=4u64 {
        let t = start + (end - start) * i / 4;
        let tx = x(t);
        let _ = write!(
            s,
            "<line x1=\"{tx:.1}\" y1=\"18\" x2=\"{tx:.1}\" y2=\"{bottom}\" stroke=\"#e3e3e3\"/>\
             <text x=\"{tx:.1}\" y=\"13\" font-size=\"10\" fill=\"#666\" \
             text-anchor=\"middle\">{}</text>",
            esc(super::html::date(t).get(11..).unwrap_or(""))
        );
    }
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

    fn task(start: u64, end: u64, phases: [Option<u64>; 7]) -> TaskBar {
        TaskBar {
            label: format!("Task {start} <t>"),
            status: "SUCCESS".into(),
            start,
            end,
            phases,
        }
    }

    #[test]
    fn a_task_bar_is_split_by_its_phases_and_overlapping_tasks_get_lanes() {
        let split = [Some(25), None, None, Some(75), None, None, Some(0)];
        let groups = [TaskGroup {
            label: "Executor driver / localhost".into(),
            tasks: vec![
                task(0, 100, split),
                task(50, 150, split),
                task(100, 200, split),
            ],
        }];
        let svg = task_timeline(0, 200, &groups);
        assert_eq!(svg.matches("class=\"task-bar\"").count(), 3);
        // Three tasks on two lanes: the third starts when the first ends.
        assert_eq!(pack_lanes(&[(0, 100), (50, 150), (100, 200)]), (vec![0, 1, 0], 2));
        // Each bar: a quarter scheduler delay, the rest computing; nothing for a zero phase.
        assert_eq!(svg.matches("<rect class=\"scheduler-delay-proportion\" x=").count(), 4);
        assert_eq!(svg.matches("<rect class=\"executor-runtime-proportion\" x=").count(), 4);
        assert_eq!(svg.matches("<rect class=\"getting-result-time-proportion\" x=").count(), 1);
        assert!(svg.contains("Task Deserialization Time: not measured"));
        assert!(svg.contains("Scheduler Delay: 25 ms"));
        assert!(svg.contains("Task 0 &lt;t&gt;") && !svg.contains("<t>"));
        // The widths: 840 px for 200 ms, so a 100 ms task is 420 px, 105 of them delay.
        assert!(svg.contains("x=\"150.0\" y=\"26\" width=\"105.0\""), "{svg}");
    }
}
