//! The `aetherius` command: parses arguments and calls into the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use aetherius::clock::SystemClock;
use aetherius::config::{
    ByteSize, Config, FailurePolicy, Format, HumanDuration, Limits, Overrides, PluginRuntimeConfig,
};
use aetherius::kit::new::{NewOptions, scaffold};
use aetherius::kit::parse_stage_config;
use aetherius::kit::test::{TestOptions, run_test};
use aetherius::logging::{self, LogFormat};
use aetherius::plugin::{PluginRuntime, PluginSource, StageKind};
use aetherius::replay::{ReplayOptions, replay};

#[derive(Parser)]
#[command(
    name = "aetherius",
    version,
    about = "Kubernetes event pipeline with sandboxed WebAssembly plugins",
    long_about = "Kubernetes event pipeline with sandboxed WebAssembly plugins.\n\n\
        Without a command, runs as `aetherius run` does: `aetherius --cluster-id=prod \
        --config=/etc/aetherius/watcher-config.yaml`, as the design document's Deployment \
        passes them."
)]
struct Cli {
    /// Log format (default: JSON when stderr is not a terminal).
    #[arg(long, global = true, value_enum, default_value_t = LogArg::Auto)]
    log_format: LogArg,
    #[command(flatten)]
    run: RunArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

/// The design document's flags, shared by `run` and `check`.
#[derive(Args, Clone)]
struct RunArgs {
    /// The config file, native or the design document's watcher-config.yaml
    /// [default: config.yaml, else /etc/aetherius/config.yaml].
    #[arg(long, short, env = "AETHERIUS_CONFIG")]
    config: Option<PathBuf>,
    /// A kubeconfig for the config's one cluster, over the file's [default:
    /// $KUBECONFIG, ~/.kube/config, then the pod's service account].
    #[arg(long, env = "AETHERIUS_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// The id of the config's one cluster, over the file's.
    #[arg(long, env = "AETHERIUS_CLUSTER_ID")]
    cluster_id: Option<String>,
    /// Where /health and /ready are served, over the file's
    /// `server.health_listen` [default: 0.0.0.0:8080].
    #[arg(long, env = "AETHERIUS_HEALTH_LISTEN")]
    health_listen: Option<String>,
    /// Where /metrics is served, over the file's `server.metrics_listen`
    /// [default: 0.0.0.0:9090].
    #[arg(long, env = "AETHERIUS_METRICS_LISTEN")]
    metrics_listen: Option<String>,
}

impl RunArgs {
    /// The config file to read: the flag, else the first default that exists.
    fn config_path(&self) -> anyhow::Result<PathBuf> {
        if let Some(path) = &self.config {
            return Ok(path.clone());
        }
        DEFAULT_CONFIGS
            .iter()
            .map(PathBuf::from)
            .find(|path| path.is_file())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no config file: pass --config FILE (or set AETHERIUS_CONFIG); none of {} exists",
                    DEFAULT_CONFIGS.join(", ")
                )
            })
    }

    fn overrides(&self) -> anyhow::Result<Overrides> {
        Ok(Overrides {
            cluster_id: self.cluster_id.clone(),
            // Relative to where the command runs, not to the config file.
            kubeconfig: match &self.kubeconfig {
                Some(path) => Some(std::path::absolute(path)?),
                None => None,
            },
            health_listen: self.health_listen.clone(),
            metrics_listen: self.metrics_listen.clone(),
        })
    }

    fn load(&self) -> anyhow::Result<Config> {
        Ok(Config::load_with(&self.config_path()?, &self.overrides()?)?)
    }
}

/// Where a config is looked for without `--config`, in order.
const DEFAULT_CONFIGS: &[&str] = &["config.yaml", "/etc/aetherius/config.yaml"];

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
        #[command(flatten)]
        args: RunArgs,
        /// Print the native config the file is read as (for the design
        /// document's format: the config to grow into chains from).
        #[arg(long)]
        print_native: bool,
    },
    /// Watch the configured clusters and publish their events until SIGTERM
    /// (the default command).
    Run(RunArgs),
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
    /// Show each cluster of a running `aetherius run`: leader or standby,
    /// synced, checkpoint, counters, last error (its `/status`).
    Status {
        /// Where it serves /health, /ready and /status.
        #[arg(
            long,
            default_value = "http://127.0.0.1:8080",
            env = "AETHERIUS_STATUS_URL"
        )]
        url: String,
        /// Print the JSON of /status instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script: `aetherius completions bash >
    /// /etc/bash_completion.d/aetherius`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
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
    /// Compile the built-in plugins (and any components given) ahead of
    /// time, for a start that compiles nothing: run it where the image is
    /// built. A start reads artifacts from PREFIX/lib/aetherius/plugins
    /// when the binary is PREFIX/bin/aetherius, before its cache directory.
    Precompile {
        /// Further plugin components (`.wasm`) to compile.
        plugins: Vec<PathBuf>,
        /// Where to write the artifacts (default: PREFIX/lib/aetherius/plugins
        /// of this binary).
        #[arg(long)]
        out: Option<PathBuf>,
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
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    let command = match cli.command {
        None => Command::Run(cli.run),
        Some(command) => {
            // `aetherius --config F check` would otherwise ignore the flag.
            for id in [
                "config",
                "kubeconfig",
                "cluster_id",
                "health_listen",
                "metrics_listen",
            ] {
                if matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine) {
                    let flag = format!("--{}", id.replace('_', "-"));
                    Cli::command()
                        .error(
                            clap::error::ErrorKind::ArgumentConflict,
                            format!("{flag} goes after the command: `aetherius COMMAND {flag} …`"),
                        )
                        .exit();
                }
            }
            command
        }
    };
    // `plugin test` shows everything a plugin logs, `debug` and `trace` too.
    let default_filter = match command {
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
    match run(command) {
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
        Command::Check { args, print_native } => {
            let path = args.config_path()?;
            if print_native {
                let config = args.load()?;
                match config.format {
                    Format::WatcherConfig { native } => print!("{native}"),
                    Format::Native => print!("{}", std::fs::read_to_string(&path)?),
                }
                return Ok(true);
            }
            print!(
                "{}",
                aetherius::check::check_with(&path, &args.overrides()?)?
            );
            Ok(true)
        }
        Command::Status { url, json } => {
            let (body, clusters) = aetherius::status::fetch(&url)?;
            if json {
                print!("{body}");
            } else {
                print!("{}", aetherius::status::table(&clusters));
            }
            Ok(true)
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "aetherius",
                &mut std::io::stdout(),
            );
            Ok(true)
        }
        Command::Run(args) => {
            let config = args.load()?;
            // One thread for the sinks, leases and endpoints (the watches
            // run on the pipeline thread's own runtime): an event then
            // crosses no runtime worker hand-offs. Measured in
            // docs/benchmarks.md: 280 -> 210 µs of CPU per watched event.
            let runtime = tokio::runtime::Builder::new_current_thread()
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
        PluginCommand::Precompile { plugins, out } => {
            let out = out
                .or_else(aetherius::plugin::shipped_dir)
                .ok_or_else(|| anyhow::anyhow!("no --out, and no directory beside this binary"))?;
            let runtime = PluginRuntime::new(None, Arc::new(SystemClock))?;
            let sources = aetherius::plugin::builtin_names()
                .map(|name| PluginSource::Builtin(name.to_owned()))
                .chain(plugins.into_iter().map(PluginSource::Path));
            for source in sources {
                let path = runtime.precompile(&source, &out)?;
                println!("{source}: {}", path.display());
            }
            Ok(true)
        }
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
