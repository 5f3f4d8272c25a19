//! The `aetherius` command: parses arguments and calls into the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use aetherius::config::{
    ByteSize, Config, FailurePolicy, HumanDuration, Limits, PluginRuntimeConfig,
};
use aetherius::kit::new::{NewOptions, scaffold};
use aetherius::kit::parse_stage_config;
use aetherius::kit::test::{TestOptions, run_test};
use aetherius::logging::{self, LogFormat};
use aetherius::plugin::StageKind;
use aetherius::replay::{ReplayOptions, replay};

#[derive(Parser)]
#[command(
    name = "aetherius",
    version,
    about = "Kubernetes event pipeline with sandboxed WebAssembly plugins"
)]
struct Cli {
    /// Log format (default: JSON when stderr is not a terminal).
    #[arg(long, global = true, value_enum, default_value_t = LogArg::Auto)]
    log_format: LogArg,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogArg {
    Auto,
    Json,
    Text,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a config and load every plugin it names.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Watch the configured clusters and publish their events until SIGTERM.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run Kubernetes Events from a JSON-lines file through the pipeline.
    Replay {
        #[arg(long, short)]
        config: PathBuf,
        /// One Event object (core/v1 or events.k8s.io/v1) per line; `-` for stdin.
        #[arg(long, short)]
        input: PathBuf,
        /// Stop at the first malformed line instead of skipping it.
        #[arg(long)]
        strict: bool,
        /// Cluster id stamped on the replayed events.
        #[arg(long, default_value = "replay")]
        cluster: String,
    },
    /// Write, build and test plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Create a plugin crate that builds, tests and runs as it is.
    New {
        /// Crate name: lowercase letters, digits and `-`.
        name: String,
        #[arg(long, value_enum)]
        kind: KindArg,
        /// Where to create it (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The SDK crate, `plugins/sdk` of an Aetherius checkout (default:
        /// $AETHERIUS_SDK, else the checkout this binary was built from).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Run one plugin over events in the real runtime and show each decision.
    Test {
        /// A plugin component (`.wasm`), or `builtin:NAME`.
        plugin: String,
        /// Kubernetes Events (core/v1 or events.k8s.io/v1), one per line; `-`
        /// for stdin.
        #[arg(long, short)]
        input: PathBuf,
        /// The stage's config: JSON or YAML text, or @FILE.
        #[arg(long, short, default_value = "")]
        config: String,
        /// Expected results, one JSON object per event (the `--format json`
        /// output, or any part of it); exits non-zero on a difference.
        #[arg(long)]
        expect: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = FormatArg::Text)]
        format: FormatArg,
        /// Fuel per event (`limits.fuel_per_event`).
        #[arg(long, default_value_t = Limits::default().fuel_per_event)]
        fuel_per_event: u64,
        /// Further fuel per KiB of message (`limits.fuel_per_kib`).
        #[arg(long, default_value_t = Limits::default().fuel_per_kib)]
        fuel_per_kib: u64,
        /// Wall-clock deadline of one call (`limits.timeout`), e.g. 100ms.
        #[arg(long, default_value_t = Limits::default().timeout.to_string())]
        timeout: String,
        /// Memory cap (`limits.memory`), e.g. 32Mi.
        #[arg(long, default_value = "32Mi")]
        memory: String,
        #[arg(long, value_enum, default_value_t = PolicyArg::FailOpen)]
        on_failure: PolicyArg,
        /// Events per call (`plugin_runtime.batch_size`).
        #[arg(long, default_value_t = PluginRuntimeConfig::default().batch_size)]
        batch_size: usize,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum KindArg {
    Filter,
    SeverityMapper,
    Enricher,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum PolicyArg {
    FailOpen,
    FailClosed,
    DeadLetter,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `plugin test` shows everything a plugin logs, `debug` and `trace` too.
    let default_filter = match cli.command {
        Command::Plugin(PluginCommand::Test { .. }) => "info,aetherius::plugin::state=trace",
        _ => "info",
    };
    logging::init(
        match cli.log_format {
            LogArg::Auto => LogFormat::Auto,
            LogArg::Json => LogFormat::Json,
            LogArg::Text => LogFormat::Text,
        },
        default_filter,
    );
    match run(cli.command) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a command; `Ok(false)`: it ran, and its answer is "no" (`plugin
/// test --expect` found differences).
fn run(command: Command) -> anyhow::Result<bool> {
    match command {
        Command::Check { config } => {
            print!("{}", aetherius::check::check(&config)?);
            Ok(true)
        }
        Command::Run { config } => {
            let config = Config::load(&config)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let result = runtime.block_on(aetherius::run::run(
                config,
                aetherius::run::shutdown_signal(),
            ));
            // Past the grace period a stuck sink or pipeline thread must
            // not hold the exit.
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            let stats = result?;
            tracing::info!(
                received = stats.received,
                published = stats.published,
                filtered = stats.filtered,
                deduplicated = stats.deduplicated,
                dead_lettered = stats.dead_lettered,
                plugin_failures = stats.plugin_failures,
                "stopped"
            );
            Ok(true)
        }
        Command::Replay {
            config,
            input,
            strict,
            cluster,
        } => {
            let config = Config::load(&config)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let summary = runtime.block_on(replay(
                config,
                ReplayOptions {
                    input,
                    strict,
                    cluster,
                },
            ))?;
            eprintln!("{summary}");
            Ok(true)
        }
        Command::Plugin(command) => plugin(command),
    }
}

fn plugin(command: PluginCommand) -> anyhow::Result<bool> {
    match command {
        PluginCommand::New {
            name,
            kind,
            dir,
            sdk,
        } => {
            let kind = match kind {
                KindArg::Filter => StageKind::Filter,
                KindArg::SeverityMapper => StageKind::SeverityMapper,
                KindArg::Enricher => StageKind::Enricher,
            };
            let wasm = format!("{}.wasm", name.replace('-', "_"));
            let dir = scaffold(&NewOptions {
                name,
                kind,
                dir,
                sdk,
            })?;
            let dir = dir.display();
            println!("created the {kind} plugin {dir}; next:");
            println!("  cd {dir} && cargo test && cargo build --target wasm32-wasip2 --release");
            println!("  aetherius plugin test target/wasm32-wasip2/release/{wasm} \\");
            println!("      --input events.jsonl --config @config.yaml --expect expected.jsonl");
            Ok(true)
        }
        PluginCommand::Test {
            plugin,
            input,
            config,
            expect,
            format,
            fuel_per_event,
            fuel_per_kib,
            timeout,
            memory,
            on_failure,
            batch_size,
        } => {
            let memory = aetherius::config::parse_byte_size(&memory)
                .map_err(|e| anyhow::anyhow!("--memory: {e}"))?;
            let timeout = aetherius::config::parse_duration(&timeout)
                .map_err(|e| anyhow::anyhow!("--timeout: {e}"))?;
            let report = run_test(&TestOptions {
                plugin,
                input,
                config: parse_stage_config(&config).map_err(anyhow::Error::msg)?,
                limits: Limits {
                    fuel_per_event,
                    fuel_per_kib,
                    timeout: HumanDuration(timeout),
                    memory: ByteSize(memory),
                },
                on_failure: match on_failure {
                    PolicyArg::FailOpen => FailurePolicy::FailOpen,
                    PolicyArg::FailClosed => FailurePolicy::FailClosed,
                    PolicyArg::DeadLetter => FailurePolicy::DeadLetter,
                },
                batch_size,
                cache_dir: PluginRuntimeConfig::default().cache_dir,
                expect,
            })?;
            match format {
                FormatArg::Text => print!("{}", report.to_text()),
                FormatArg::Json => print!("{}", report.to_json_lines()),
            }
            match &report.mismatches {
                None => Ok(true),
                Some(mismatches) if mismatches.is_empty() => {
                    eprintln!("all {} events as expected", report.results.len());
                    Ok(true)
                }
                Some(mismatches) => {
                    for mismatch in mismatches {
                        eprintln!("MISMATCH {mismatch}");
                    }
                    eprintln!(
                        "{} difference(s) from the expected results",
                        mismatches.len()
                    );
                    Ok(false)
                }
            }
        }
    }
}
