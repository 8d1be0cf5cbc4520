//! What the runner prints: a table per stage (created / linked / updated / skipped by
//! reason / failed), sync-log lines, and the `--json` result object.

use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use serde_json::json;
use std::collections::BTreeMap;

use tandem_domain::System;
use tandem_domain::job::Job;
use tandem_domain::log::{LogEntry, Outcome};

/// Stage -> outcome key -> count.
pub type Counts = BTreeMap<String, BTreeMap<String, u64>>;

/// A job's outcome counts per stage, non-zero only.
pub fn job_counts(job: &Job) -> Counts {
    job.stages
        .iter()
        .map(|s| (s.as_str().to_string(), job.progress.get(s).map(|p| p.outcome_counts()).unwrap_or_default()))
        .collect()
}

/// What an import cost: store round trips, requests to the external system, seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cost {
    pub store_calls: u64,
    /// Sequential store rounds (calls overlapping one in flight count once); meaningful
    /// with a store latency set.
    pub store_rounds: u64,
    pub requests: u64,
    pub seconds: f64,
}

/// The `--json` object.
pub fn json_line(system: System, result: &Counts, expected: &Counts, cost: &Cost) -> String {
    json_object(system, result, expected, cost).to_string()
}

/// [`json_line`]'s object, for a caller to add to.
pub fn json_object(system: System, result: &Counts, expected: &Counts, cost: &Cost) -> serde_json::Value {
    json!({
        "system": system,
        "result": result,
        "expected": expected,
        "store_calls": cost.store_calls,
        "store_rounds": cost.store_rounds,
        "requests": cost.requests,
        "seconds": (cost.seconds * 1000.0).round() / 1000.0,
    })
}

/// One table row per stage.
pub fn stage_table(job: &Job) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(["stage", "pages", "seconds", "created", "linked", "updated", "skipped (by reason)", "failed"]);
    for stage in &job.stages {
        let p = job.progress.get(stage).cloned().unwrap_or_default();
        let skipped = if p.skipped.is_empty() {
            "0".to_string()
        } else {
            p.skipped.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join("\n")
        };
        let num = |n: u64| Cell::new(n).set_alignment(CellAlignment::Right);
        t.add_row(vec![
            Cell::new(stage.as_str()),
            num(p.pages),
            Cell::new(p.seconds(job.updated_at).map_or("-".to_string(), |s| format!("{s:.2}")))
                .set_alignment(CellAlignment::Right),
            num(p.created),
            num(p.linked),
            num(p.updated),
            Cell::new(skipped),
            num(p.failed),
        ]);
    }
    t.to_string()
}

/// A sync-log entry as one line.
pub fn log_line(e: &LogEntry) -> String {
    let detail = match &e.outcome {
        Outcome::Failed(why) => format!(" ({why})"),
        _ => String::new(),
    };
    format!(
        "{}  {:<10} {:<12} {:<28} ext {:<8} -> {}{}",
        e.at.to_rfc3339().get(..19).unwrap_or_default(),
        e.system.as_str(),
        e.object.as_str(),
        e.outcome.key(),
        e.external_id.as_deref().unwrap_or("-"),
        e.crm_id.as_ref().map(|i| i.as_str()).unwrap_or("-"),
        detail
    )
}

/// Up to `n` log lines, one per (object, outcome) seen first, so a sample shows variety.
pub fn sample_lines(entries: &[LogEntry], n: usize) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    entries.iter().filter(|e| seen.insert((e.object, e.outcome.key()))).take(n).map(log_line).collect()
}

/// Differences between result and expected, one line each; empty when they match.
pub fn differences(result: &Counts, expected: &Counts) -> Vec<String> {
    let mut out = Vec::new();
    let stages: std::collections::BTreeSet<&String> = result.keys().chain(expected.keys()).collect();
    for stage in stages {
        let empty = BTreeMap::new();
        let (r, e) = (result.get(stage).unwrap_or(&empty), expected.get(stage).unwrap_or(&empty));
        let keys: std::collections::BTreeSet<&String> = r.keys().chain(e.keys()).collect();
        for k in keys {
            let (a, b) = (r.get(k).copied().unwrap_or(0), e.get(k).copied().unwrap_or(0));
            if a != b {
                out.push(format!("{stage} {k}: imported {a}, expected {b}"));
            }
        }
    }
    out
}
