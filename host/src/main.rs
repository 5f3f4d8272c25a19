//! The `aetherius` command: parses arguments and calls into the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use aetherius::config::Config;
use aetherius::logging::{self, LogFormat};
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(match cli.log_format {
        LogArg::Auto => LogFormat::Auto,
        LogArg::Json => LogFormat::Json,
        LogArg::Text => LogFormat::Text,
    });
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Check { config } => {
            print!("{}", aetherius::check::check(&config)?);
            Ok(())
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
            Ok(())
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
            Ok(())
        }
    }
}
