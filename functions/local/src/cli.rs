//! The `tandem` command line: `demo`, `serve` and `sim`.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tandem_connectors::http::Settings;
use tandem_connectors::{Pacing, Rate};
use tandem_domain::System;
use tandem_domain::field_map::Target;
use tandem_domain::usecases::{Tuning, schedule};
use tandem_embedded::QueueConfig;
use tandem_sim::SimConfig;

use crate::aws::AwsNames;
use crate::demo::{self, DemoOptions};
use crate::export_demo;
use crate::report;
use crate::restore_demo;
use crate::runtime::LocalRuntime;
use crate::server;
use crate::sims::{self, Scale};
use crate::spotio_demo;
use crate::sync_demo;
use crate::two_way_demo;

/// Tandem's local runner.
#[derive(Parser, Debug)]
#[command(name = "tandem", version, about = "Tandem's local runner: the CRM <-> PSA integration engine on one machine")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What to run.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Seed a simulator and a CRM, connect, map, import everything, and compare with the ground truth.
    Demo(DemoArgs),
    /// Serve the local HTTP API on the embedded adapters, draining the queue in-process.
    Serve(ServeArgs),
    /// Serve one external system's simulator alone.
    Sim(SimArgs),
}

/// Tenant size and shape.
#[derive(Args, Debug, Clone)]
pub struct ScaleArgs {
    /// Generator seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Number of external companies; the rest scales from it.
    #[arg(long, default_value_t = 600)]
    pub companies: usize,
    /// Override the number of members.
    #[arg(long)]
    pub members: Option<usize>,
    /// Override the number of contacts.
    #[arg(long)]
    pub contacts: Option<usize>,
    /// Override the number of opportunities.
    #[arg(long)]
    pub opportunities: Option<usize>,
    /// Override the number of activities.
    #[arg(long)]
    pub activities: Option<usize>,
    /// Override the number of catalog items.
    #[arg(long)]
    pub catalog_items: Option<usize>,
    /// Simulated latency per request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Requests per second above which the simulator answers 429.
    #[arg(long)]
    pub rate_limit: Option<u32>,
}

impl ScaleArgs {
    fn scale(&self) -> Scale {
        Scale {
            seed: self.seed,
            companies: self.companies,
            members: self.members,
            contacts: self.contacts,
            opportunities: self.opportunities,
            activities: self.activities,
            catalog_items: self.catalog_items,
        }
    }
    fn sim(&self) -> SimConfig {
        SimConfig { requests_per_second: self.rate_limit, latency: Duration::from_millis(self.latency_ms) }
    }
    /// How the connectors pace against the simulator: at its rate limit when it has one
    /// (the budget a real vendor gives), else not at all (a simulator without a limit
    /// stands for no vendor's real rate).
    fn pacing(&self) -> Pacing {
        match self.rate_limit {
            Some(rps) if rps > 0 => Pacing::At(Rate::per_second(rps)),
            _ => Pacing::Off,
        }
    }
}

/// `tandem demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// The external system to simulate.
    #[arg(long, default_value = "connectwise")]
    pub system: System,
    #[command(flatten)]
    pub scale: ScaleArgs,
    /// Print one JSON object {system, result, expected} instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Keep the CRM store in this directory (default: in memory).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Records per page read from the external system (at most 1000).
    #[arg(long, default_value_t = 1000)]
    pub page_size: u32,
    /// Run on the AWS adapters at this AWS-compatible endpoint (e.g. moto at
    /// http://127.0.0.1:4566), creating the table and queues if missing.
    #[arg(long, conflicts_with = "data_dir")]
    pub aws_endpoint: Option<String>,
    /// Wait this many milliseconds in every store round trip (concurrent ones overlap), to
    /// see what the import costs on DynamoDB.
    #[arg(long, default_value_t = 0)]
    pub store_latency_ms: u64,
    /// Run a flow's scenario after the import instead of showing the import alone.
    #[arg(long, value_enum)]
    pub scenario: Option<Scenario>,
    /// With `--scenario spotio`: what a CRM company becomes in Salesforce (default lead).
    #[arg(long, value_enum)]
    pub object: Option<SpotioObject>,
    /// Preview the import (a dry run): what it would create, link, update and skip, with
    /// the tenant's records left as they were.
    #[arg(long, conflicts_with = "scenario")]
    pub dry_run: bool,
}

/// What the spotio scenario's CRM companies become in Salesforce (`--object`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SpotioObject {
    /// One Lead per company, person fields from its first contact.
    #[default]
    Lead,
    /// An Account per company, a Contact per contact, Opportunities at a stage.
    Account,
}

impl SpotioObject {
    fn target(self) -> Target {
        match self {
            SpotioObject::Lead => Target::Lead,
            SpotioObject::Account => Target::Account,
        }
    }
}

/// The flows' scenarios (`tandem demo --scenario NAME`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// "Send to <system>": records created in the CRM exported, checked in the simulator.
    Export,
    /// Auto-sync in: people change records in the system; webhooks and the poll bring them.
    SyncIn,
    /// Two-way sync: both sides change records; each change reaches the other side once.
    TwoWay,
    /// Salesforce's field-level mode (SPOTIO mode): a field map checked against Salesforce's
    /// describe, selective sync, Leads or Accounts, Tasks and Opportunities (`--object`).
    Spotio,
    /// Snapshots: a CRM imported and edited, then its snapshot from before the import
    /// restored and compared with its seed.
    Restore,
}

/// `tandem serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Keep the CRM store and secrets in this directory (default: in memory).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Also start a seeded simulator of this system and print its credentials.
    #[arg(long)]
    pub with_sim: Option<System>,
    /// Run on the AWS adapters at this AWS-compatible endpoint (e.g. moto), creating the
    /// table and queues if missing.
    #[arg(long, conflicts_with = "data_dir")]
    pub aws_endpoint: Option<String>,
    /// Seconds without progress after which a running job is reported as stalled.
    #[arg(long, default_value_t = Tuning::DEFAULT_STALL_AFTER.as_secs())]
    pub stall_after: u64,
    /// Where the external systems reach this API, for the webhooks inbound sync registers
    /// (default `http://ADDR` when the port is given).
    #[arg(long)]
    pub public_url: Option<String>,
    /// Poll every connection with inbound sync this often (e.g. `5m`; the scheduled
    /// function's rate in AWS); off when not given.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub poll_every: Option<Duration>,
    /// How often a poll also reconciles each stage's ids with the system to find hard
    /// deletes (reads every record of the kind).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "24h")]
    pub sweep_every: Duration,
    #[command(flatten)]
    pub scale: ScaleArgs,
}

/// `tandem sim`.
#[derive(Args, Debug)]
pub struct SimArgs {
    /// The system to simulate.
    pub system: System,
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    #[command(flatten)]
    pub scale: ScaleArgs,
    /// Print the base URL and credentials as one JSON object on the first line.
    #[arg(long)]
    pub json: bool,
}

/// Runs a parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Demo(args) => run_demo(args).await,
        Command::Serve(args) => run_serve(args).await,
        Command::Sim(args) => run_sim(args).await,
    }
}

async fn run_demo(args: DemoArgs) -> anyhow::Result<i32> {
    if args.object.is_some() && args.scenario != Some(Scenario::Spotio) {
        anyhow::bail!("--object chooses the spotio scenario's Salesforce object: use it with --scenario spotio");
    }
    if args.scenario == Some(Scenario::Spotio) && args.system != System::Salesforce {
        anyhow::bail!(
            "the spotio scenario is Salesforce's field-level mode: run it with --system salesforce, not {}",
            args.system
        );
    }
    let scale = args.scale.scale();
    if !args.json && args.scenario == Some(Scenario::Spotio) {
        eprintln!(
            "Starting a Salesforce simulator and playing its field-level mode ({:?} target)...",
            args.object.unwrap_or_default()
        );
    } else if !args.json {
        eprintln!(
            "Generating a {} tenant (seed {}, {} companies) and importing it...",
            args.system.display_name(),
            scale.seed,
            scale.companies
        );
    }
    let opts = DemoOptions {
        system: args.system,
        scale,
        sim: args.scale.sim(),
        connectors: Settings {
            page_size: args.page_size.clamp(1, 1000),
            pacing: args.scale.pacing(),
            ..Settings::default()
        },
        data_dir: args.data_dir,
        progress: !args.json,
        aws_endpoint: args.aws_endpoint,
        store_latency: Duration::from_millis(args.store_latency_ms),
        dry_run: args.dry_run,
    };
    match args.scenario {
        Some(Scenario::Export) => return run_export_scenario(args.system, args.json, &opts).await,
        Some(Scenario::SyncIn) => return run_sync_scenario(args.system, args.json, &opts).await,
        Some(Scenario::TwoWay) => return run_two_way_scenario(args.system, args.json, &opts).await,
        Some(Scenario::Restore) => return run_restore_scenario(args.system, args.json, &opts).await,
        Some(Scenario::Spotio) => {
            let object = args.object.unwrap_or_default().target();
            return run_spotio_scenario(args.json, object, &opts).await;
        }
        None => {}
    }
    let outcome = demo::run(opts).await?;
    let untouched = outcome.untouched.unwrap_or(true);
    if args.json {
        let mut line = report::json_object(args.system, &outcome.result, &outcome.expected, &outcome.cost);
        if let Some(untouched) = outcome.untouched {
            line["dry_run"] = true.into();
            line["tenant_untouched"] = untouched.into();
        }
        println!("{line}");
        return Ok(if untouched { 0 } else { 1 });
    }
    if args.dry_run {
        println!("A preview: what the import would do. Nothing of the tenant's was written.\n");
    }
    println!("{}", report::stage_table(&outcome.job));
    println!("\nRecent sync-log entries:");
    for line in &outcome.log_lines {
        println!("  {line}");
    }
    let secs = outcome.import_time.as_secs_f64();
    println!(
        "\n{} {} external records in {:.2} s ({:.0} records/s), with {} store round trips ({:.2} per record; \
         {:.3} sequential rounds per record) and {} requests to {}.",
        if args.dry_run { "Previewed" } else { "Imported" },
        outcome.external_records,
        secs,
        outcome.external_records as f64 / secs.max(1e-9),
        outcome.cost.store_calls,
        outcome.cost.store_calls as f64 / (outcome.external_records.max(1) as f64),
        outcome.cost.store_rounds as f64 / (outcome.external_records.max(1) as f64),
        outcome.cost.requests,
        args.system.display_name(),
    );
    if !untouched {
        println!("The preview changed the tenant's CRM records: a bug.");
        return Ok(1);
    }
    let diffs = report::differences(&outcome.result, &outcome.expected);
    if diffs.is_empty() {
        println!("The result matches the simulator's ground truth exactly.");
        Ok(0)
    } else {
        println!("The result differs from the simulator's ground truth:");
        for d in diffs {
            println!("  {d}");
        }
        Ok(1)
    }
}

/// What a scenario prints: its JSON line (`system`, `scenario`, `result`, `expected` and
/// its own `figures`), or its table, its `notes` and whether it did what it meant.
struct ScenarioReport<'a> {
    scenario: &'static str,
    result: &'a serde_json::Value,
    expected: &'a serde_json::Value,
    /// Fields the JSON line adds (an object).
    figures: serde_json::Value,
    header: &'a [&'a str],
    rows: Vec<Vec<String>>,
    notes: Vec<String>,
    /// Said when the result is what the scenario meant.
    meant: String,
    /// What differs when it is not (`... differs from the scenario's intent`).
    flow: &'static str,
}

impl ScenarioReport<'_> {
    /// Prints the report; 0 when the result is what the scenario meant, else 1.
    fn print(self, system: System, as_json: bool) -> i32 {
        let code = if self.result == self.expected { 0 } else { 1 };
        if as_json {
            let mut line = serde_json::json!({"system": system, "scenario": self.scenario,
                "result": self.result, "expected": self.expected});
            if let (Some(line), Some(figures)) = (line.as_object_mut(), self.figures.as_object()) {
                line.extend(figures.clone());
            }
            println!("{line}");
            return code;
        }
        let mut table = comfy_table::Table::new();
        table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
        table.set_header(self.header);
        for row in &self.rows {
            table.add_row(row.iter().map(String::as_str));
        }
        println!("{table}");
        for note in &self.notes {
            println!("{note}");
        }
        match code {
            0 => println!("{}", self.meant),
            _ => println!(
                "{} differs from the scenario's intent:\nresult   {}\nexpected {}",
                self.flow, self.result, self.expected
            ),
        }
        code
    }
}

/// `tandem demo --scenario export`: prints the JSON object or a table; 1 when the result
/// is not what the scenario meant.
async fn run_export_scenario(system: System, as_json: bool, opts: &DemoOptions) -> anyhow::Result<i32> {
    let demo = export_demo::run(opts).await?;
    Ok(ScenarioReport {
        scenario: "export",
        result: &demo.result,
        expected: &demo.expected,
        figures: serde_json::json!({}),
        header: &["case", "record", "outcome", "message"],
        rows: demo.rows.iter().map(|r| r.to_vec()).collect(),
        notes: Vec::new(),
        meant: format!(
            "Every export did what the scenario meant, and each company is in {} once.",
            system.display_name()
        ),
        flow: "The export",
    }
    .print(system, as_json))
}

/// `tandem demo --scenario sync-in`: prints the JSON object (with `webhook_p95_ms`) or a
/// table; 1 when the result is not what the scenario meant.
async fn run_sync_scenario(system: System, as_json: bool, opts: &DemoOptions) -> anyhow::Result<i32> {
    let demo = sync_demo::run(opts).await?;
    let mut notes = Vec::new();
    if let Some(p95) = demo.webhook_p95_ms {
        notes.push(format!("Webhook to CRM record, 95th percentile: {p95} ms."));
    }
    if let Some(p95) = demo.intake_p95_ms {
        notes.push(format!("Webhook answered by the intake, 95th percentile: {p95} ms."));
    }
    Ok(ScenarioReport {
        scenario: "sync-in",
        result: &demo.result,
        expected: &demo.expected,
        figures: serde_json::json!({"webhook_p95_ms": demo.webhook_p95_ms, "intake_p95_ms": demo.intake_p95_ms}),
        header: &["case", "what happened", "what was meant"],
        rows: demo.rows.iter().map(|r| r.to_vec()).collect(),
        notes,
        meant: format!("Every change in {} reached the CRM as the scenario meant.", system.display_name()),
        flow: "Sync in",
    }
    .print(system, as_json))
}

/// `tandem demo --scenario two-way`: prints the JSON object (with the echoes skipped and
/// the vendor writes) or a table; 1 when the result is not what the scenario meant.
async fn run_two_way_scenario(system: System, as_json: bool, opts: &DemoOptions) -> anyhow::Result<i32> {
    let demo = two_way_demo::run(opts).await?;
    Ok(ScenarioReport {
        scenario: "two-way",
        result: &demo.result,
        expected: &demo.expected,
        figures: serde_json::json!({"echoes_skipped": demo.echoes_skipped, "vendor_writes": demo.vendor_writes}),
        header: &["case", "what happened", "what was meant"],
        rows: demo.rows.iter().map(|r| r.to_vec()).collect(),
        notes: vec![
            format!("Echoes recognised and skipped: {}.", demo.echoes_skipped),
            format!("Writes to {} over the scenario: {}.", system.display_name(), demo.vendor_writes),
        ],
        meant: "Every change reached the other side as the scenario meant.".into(),
        flow: "Two-way sync",
    }
    .print(system, as_json))
}

/// `tandem demo --scenario restore`: prints the JSON object or a table; 1 when the result
/// is not what the scenario meant.
async fn run_restore_scenario(system: System, as_json: bool, opts: &DemoOptions) -> anyhow::Result<i32> {
    let demo = restore_demo::run(opts).await?;
    Ok(ScenarioReport {
        scenario: "restore",
        result: &demo.result,
        expected: &demo.expected,
        figures: serde_json::json!({}),
        header: &["case", "what happened", "what was meant"],
        rows: demo.rows.iter().map(|r| r.to_vec()).collect(),
        notes: Vec::new(),
        meant: "The restore put the CRM back exactly as it was seeded, and can be undone.".into(),
        flow: "The restore",
    }
    .print(system, as_json))
}

/// `tandem demo --system salesforce --scenario spotio --object lead|account`: prints the
/// JSON object (with `object` and the vendor writes) or a table; 1 when the result is not
/// what the scenario meant.
async fn run_spotio_scenario(as_json: bool, object: Target, opts: &DemoOptions) -> anyhow::Result<i32> {
    let demo = spotio_demo::run(opts, object).await?;
    let name = match object {
        Target::Lead => "lead",
        Target::Account => "account",
    };
    Ok(ScenarioReport {
        scenario: "spotio",
        result: &demo.result,
        expected: &demo.expected,
        figures: serde_json::json!({"object": name, "vendor_writes": demo.vendor_writes}),
        header: &["case", "what happened", "what was meant"],
        rows: demo.rows.iter().map(|r| r.to_vec()).collect(),
        notes: vec![format!("Writes to Salesforce over the scenario: {}.", demo.vendor_writes)],
        meant: format!("Salesforce's field-level mode ({name} target) did everything the scenario meant."),
        flow: "Salesforce's field-level mode",
    }
    .print(System::Salesforce, as_json))
}

async fn run_serve(args: ServeArgs) -> anyhow::Result<i32> {
    let mut rt = match &args.aws_endpoint {
        Some(endpoint) => LocalRuntime::aws(endpoint, &AwsNames::default(), Settings::default()).await?,
        None => LocalRuntime::new(args.data_dir.as_deref(), QueueConfig::default(), Settings::default())?,
    };
    rt.svc.tuning.stall_after = Duration::from_secs(args.stall_after);
    rt.svc.tuning.sweep_every = args.sweep_every;
    rt.svc.tuning.public_url =
        args.public_url.clone().or_else(|| (args.addr.port() != 0).then(|| format!("http://{}", args.addr)));
    rt.migrate().await?;
    let _worker = rt.spawn_worker();
    let _poller = args.poll_every.map(|every| {
        let svc = rt.svc.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match schedule::tick(&svc).await {
                    Ok(t) => tracing::info!(started = t.started, requeued = t.requeued, "schedule ticked"),
                    Err(e) => tracing::warn!(error = %e, "schedule tick failed"),
                }
            }
        })
    });
    let _sim = match args.with_sim {
        Some(system) => {
            let sim = sims::start(system, &args.scale.scale(), args.scale.sim(), 0).await?;
            println!(
                "{} simulator at {}; save these credentials with POST /connections/{}:\n{}",
                system.display_name(),
                sim.base_url,
                system,
                sim.credentials
            );
            Some(sim)
        }
        None => None,
    };
    let (addr, task) = server::serve(rt, args.addr).await?;
    println!(
        "Tandem local API on http://{addr} (tenant header {}, default {:?})",
        server::TENANT_HEADER,
        server::DEFAULT_TENANT
    );
    tokio::select! {
        _ = task => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(0)
}

async fn run_sim(args: SimArgs) -> anyhow::Result<i32> {
    let sim = sims::start(args.system, &args.scale.scale(), args.scale.sim(), args.port).await?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "system": args.system, "base_url": sim.base_url, "credentials": sim.credentials })
        );
    } else {
        println!("{} simulator at {}", args.system.display_name(), sim.base_url);
        println!("credentials: {}", sim.credentials);
        println!("Ctrl-C to stop.");
    }
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(0)
}
