//! Agent mode: Aetherius inside another Rust program (docs/embedding.md).
//!
//! Runs the pipeline of a config (either format) and prints each event a
//! chain (or an `embedded` sink of the config) publishes — the `default`
//! chain unless `--from NAME` — as `CLUSTER SEVERITY ID JSON`, until Ctrl-C
//! or, with `--count N`, the Nth event.
//!
//!   cargo run --example embedding -- config/watcher-config.yaml --count 10

use std::path::PathBuf;

use aetherius::agent::Agent;
use aetherius::config::Config;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    const USAGE: &str = "usage: embedding CONFIG [--from CHAIN_OR_SINK] [--count N]";
    let mut args = std::env::args().skip(1);
    let config: PathBuf = args.next().ok_or_else(|| anyhow::anyhow!(USAGE))?.into();
    let (mut from, mut count) = ("default".to_owned(), None::<usize>);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| anyhow::anyhow!(USAGE))?;
        match flag.as_str() {
            "--from" => from = value,
            "--count" => count = Some(value.parse()?),
            _ => anyhow::bail!(USAGE),
        }
    }

    // Aetherius logs through `tracing`; a program with its own subscriber
    // skips this.
    aetherius::logging::init(aetherius::logging::LogFormat::Auto, "info");
    let mut agent = Agent::new(Config::load(&config)?);
    let mut events = agent.subscribe(&from, 100)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(agent.run(async {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = stopped => {}
        }
    }));

    let mut seen = 0;
    while let Some(event) = events.recv().await {
        println!(
            "{} {} {} {}",
            event.cluster_id,
            event.severity,
            event.id,
            String::from_utf8_lossy(&event.json)
        );
        seen += 1;
        if count == Some(seen) {
            break;
        }
    }
    // Stop as on SIGTERM: drain, flush, checkpoint; keep receiving meanwhile.
    let _ = stop.send(());
    let drain = tokio::spawn(async move { while events.recv().await.is_some() {} });
    let stats = running.await??;
    drain.await?;
    eprintln!(
        "received {}, published {}, filtered {}",
        stats.received, stats.published, stats.filtered
    );
    Ok(())
}
