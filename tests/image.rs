//! The container image without a container engine (none runs here): the
//! Dockerfile's runtime stage as a root filesystem (scripts/test-servers.sh
//! debootstraps it with the same packages and user), the binary mounted in
//! where the Dockerfile copies it, everything read-only but the volumes the
//! Deployment mounts, run as the non-root user — against the test API
//! server, with the design document's troubleshooting commands inside it.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use aetherius_tests::publishing::create_backoff_events;
use aetherius_tests::running::{Running, http_get, in_private_mount_namespace, wait_for_output};
use aetherius_tests::servers::{KubeCluster, image_rootfs};
use aetherius_tests::{Scratch, files_under, repo_root};

/// The binary put in the image: this build's, or `$AETHERIUS_IMAGE_BINARY`
/// (say the release binary the Dockerfile builds, `cargo build --release`;
/// a relative path is taken from `host/`, where cargo runs the test).
fn binary() -> std::path::PathBuf {
    std::env::var_os("AETHERIUS_IMAGE_BINARY")
        .map(std::path::PathBuf::from)
        .map(|path| std::path::absolute(path).expect("an absolute path"))
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_aetherius").into())
}
/// The image's user (Dockerfile: `USER 65532:65532`).
const USER: &str = "65532:65532";

/// A shell script that, in a mount namespace of its own, makes the root
/// filesystem read-only, mounts the binary and the plugins it was shipped
/// with (`aetherius plugin precompile`, as the Dockerfile runs it), the config
/// (read-only) and the state and cache volumes (writable) into it, and runs
/// `"$@"` there as the image's user.
const IN_IMAGE: &str = r#"set -e
root=$1 binary=$2 lib=$3 config=$4 state=$5 cache=$6; shift 6
mount --bind "$root" "$root"
mount -o remount,bind,ro "$root"
mount --bind "$binary" "$root/usr/local/bin/aetherius"
mount -o remount,bind,ro "$root/usr/local/bin/aetherius"
mount --bind "$lib" "$root/usr/local/lib"
mount -o remount,bind,ro "$root/usr/local/lib"
mount --bind "$config" "$root/etc/aetherius/config"
mount -o remount,bind,ro "$root/etc/aetherius/config"
mount --bind "$state" "$root/var/lib/aetherius"
mount --bind "$cache" "$root/var/cache/aetherius"
exec chroot --userspec=65532:65532 "$root" "$@""#;

struct Image {
    scratch: Scratch,
}

impl Image {
    fn new() -> Self {
        let scratch = Scratch::new();
        for dir in ["config", "state", "cache"] {
            std::fs::create_dir_all(scratch.path(dir)).unwrap();
        }
        // The Dockerfile's build stage: the built-in plugins compiled into
        // what becomes /usr/local/lib/aetherius/plugins.
        let precompiled = Command::new(binary())
            .args(["plugin", "precompile", "--out"])
            .arg(scratch.path("lib/aetherius/plugins"))
            .output()
            .unwrap();
        assert!(
            precompiled.status.success(),
            "{}",
            String::from_utf8_lossy(&precompiled.stderr)
        );
        for dir in ["state", "cache"] {
            let status = Command::new("chown")
                .args([USER, scratch.path(dir).to_str().unwrap()])
                .status()
                .unwrap();
            assert!(status.success(), "chown the volumes to the image's user");
        }
        Self { scratch }
    }

    /// `args` run in the image (`args[0]` a path inside it).
    fn command(&self, args: &[&str]) -> Command {
        let mut command = in_private_mount_namespace(IN_IMAGE);
        command
            .arg(image_rootfs())
            .arg(binary())
            .args(["lib", "config", "state", "cache"].map(|dir| self.scratch.path(dir)))
            .args(args)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            // As deploy/deployment.yaml sets them.
            .env("XDG_STATE_HOME", "/var/lib")
            .env("RUST_LOG", "info");
        command
    }

    fn run(&self, args: &[&str]) -> (bool, String) {
        let output = self.command(args).output().expect("run in the image");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    }
}

#[test]
fn the_image_runs_read_only_as_its_user_watches_and_answers_the_documents_commands() {
    let image = Image::new();
    let (ok, version) = image.run(&["/usr/local/bin/aetherius", "--version"]);
    assert!(ok && version.starts_with("aetherius "), "{version}");
    let (ok, id) = image.run(&["id", "-u"]);
    assert!(ok && id.trim() == "65532", "runs as the image's user: {id}");
    let (ok, output) = image.run(&["touch", "/usr/local/bin/x"]);
    assert!(!ok && output.contains("Read-only file system"), "{output}");

    // The pipeline of config/default.yaml, publishing to a file on the state
    // volume, watching the test API server through a mounted kubeconfig.
    let cluster = KubeCluster::shared();
    let shop = cluster.fresh_namespace("image");
    cluster.write_kubeconfig(&image.scratch.path("config/kubeconfig"));
    let default = std::fs::read_to_string(repo_root().join("config/default.yaml")).unwrap();
    let head = &default[..default.find("\nsinks:").unwrap()];
    std::fs::write(
        image.scratch.path("config/config.yaml"),
        format!(
            "{head}
sinks:
  out: {{ chain: default, file: {{ path: /var/lib/aetherius/out.jsonl }} }}
plugin_runtime: {{ cache_dir: /var/cache/aetherius }}
clusters:
  - {{ id: image, kubeconfig: /etc/aetherius/config/kubeconfig, namespaces: [{shop}] }}
"
        ),
    )
    .unwrap();
    let (ok, output) = image.run(&[
        "/usr/local/bin/aetherius",
        "check",
        "--config",
        "/etc/aetherius/config/config.yaml",
    ]);
    assert!(ok, "{output}");

    let mut run = Running::start_command(image.command(&[
        "/usr/local/bin/aetherius",
        "--log-format",
        "json",
        "--config=/etc/aetherius/config/config.yaml",
        "--health-listen=127.0.0.1:0",
        "--metrics-listen=127.0.0.1:0",
    ]));
    run.wait_until_watching(1);
    let address = run.http_address();
    create_backoff_events(cluster, &shop, 0..3);
    let published = wait_for_output(
        &image.scratch.path("state/out.jsonl"),
        3,
        Duration::from_secs(60),
    );
    assert_eq!(published.len(), 3);
    assert_eq!(http_get(address, "/ready").0, 200);

    // The design document's troubleshooting, from inside the image: curl
    // the metrics; the logs have the cache sync.
    let (ok, metrics) = image.run(&["curl", "-sf", &format!("http://{address}/metrics")]);
    assert!(ok, "{metrics}");
    assert!(
        metrics.contains("k8s_events_error_total") && metrics.contains("cluster_id=\"image\""),
        "{metrics}"
    );
    assert_eq!(run.count_logs(&["cache synced", "image"]), 1);
    // A checkpoint written on the state volume, as the image's user.
    let logs = run.stop();
    let checkpoint = image.scratch.path("state/checkpoints.json");
    assert!(checkpoint.is_file(), "{}", logs.join("\n"));
    // Nothing was compiled: the plugins came from the image's artifacts,
    // the cache volume holds none.
    let compiled = files_under(&image.scratch.path("cache"));
    assert!(compiled.is_empty(), "compiled at the start: {compiled:?}");
}

/// The image is built with its plugins compiled, where a start looks.
#[test]
fn the_dockerfile_ships_the_plugins_compiled() {
    let dockerfile = std::fs::read_to_string(repo_root().join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("plugin precompile --out /plugins")
            && dockerfile.contains("COPY --from=build /plugins /usr/local/lib/aetherius/plugins"),
        "{dockerfile}"
    );
}

/// The packages the root filesystem is built with are the Dockerfile's.
#[test]
fn the_root_filesystem_has_the_dockerfiles_packages() {
    let dockerfile = std::fs::read_to_string(repo_root().join("Dockerfile")).unwrap();
    let runtime = &dockerfile[dockerfile.rfind("FROM ").unwrap()..];
    let install = runtime
        .lines()
        .find(|l| l.contains("apt-get install"))
        .expect("the runtime stage installs packages");
    let packages: Vec<&str> = install
        .split_whitespace()
        .skip_while(|w| *w != "--no-install-recommends")
        .skip(1)
        .take_while(|w| *w != "\\")
        .collect();
    let script = std::fs::read_to_string(repo_root().join("scripts/test-servers.sh")).unwrap();
    let line = script
        .lines()
        .find_map(|l| l.strip_prefix("IMAGE_PACKAGES="))
        .unwrap();
    let scripted: Vec<&str> = line.trim_matches('"').split_whitespace().collect();
    assert_eq!(
        packages, scripted,
        "Dockerfile and scripts/test-servers.sh differ"
    );
    assert!(Path::new(&image_rootfs()).join("usr/bin/curl").is_file());
}
