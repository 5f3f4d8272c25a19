//! Builds the default plugins (`plugins/`, a separate wasm32-wasip2 workspace)
//! and embeds them: `src/plugin/loader.rs` includes the generated table.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The default plugins, by crate name; each is embedded as `builtin:NAME`.
const BUILTINS: &[&str] = &[
    "type-filter",
    "reason-filter",
    "namespace-filter",
    "time-filter",
    "severity-mapper",
    "secret-guard",
    "workload-enricher",
];

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .parent()
        .expect("host/ is inside the workspace");
    let plugins = root.join("plugins");
    println!("cargo:rerun-if-changed={}", plugins.display());
    println!("cargo:rerun-if-changed={}", root.join("wit").display());

    let target_dir = root.join("target").join("wasm");
    let wasm_files = build_wasm_workspace(&plugins.join("Cargo.toml"), &target_dir, BUILTINS);

    let mut table = String::from("pub const BUILTINS: &[(&str, &[u8])] = &[\n");
    for (name, path) in BUILTINS.iter().zip(&wasm_files) {
        writeln!(
            table,
            "    ({name:?}, include_bytes!({:?})),",
            path.display().to_string()
        )
        .unwrap();
    }
    table.push_str("];\n");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    std::fs::write(out.join("builtins.rs"), table).expect("write builtins.rs");
}

/// Runs `cargo build --target wasm32-wasip2 --release` for `packages` of the
/// workspace at `manifest` and returns the `.wasm` path of each.
fn build_wasm_workspace(manifest: &Path, target_dir: &Path, packages: &[&str]) -> Vec<PathBuf> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(manifest)
        .arg("--target-dir")
        .arg(target_dir);
    for package in packages {
        command.args(["-p", package]);
    }
    // Flags meant for the host build must not leak into the guest build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        command.env_remove(var);
    }
    let status = command.status().expect("run cargo for the wasm plugins");
    if !status.success() {
        panic!(
            "building the Wasm plugins in {} failed (is the target installed? `rustup target add wasm32-wasip2`)",
            manifest.display()
        );
    }
    packages
        .iter()
        .map(|package| {
            let path = target_dir
                .join("wasm32-wasip2/release")
                .join(format!("{}.wasm", package.replace('-', "_")));
            assert!(path.is_file(), "{} was not built", path.display());
            path
        })
        .collect()
}
