//! Builds the hostile and helper guests in `tests/plugins/` (a separate
//! wasm32-wasip2 workspace) and exposes their paths as constants, like
//! wasmtime's test-programs: `aetherius_tests::guests::LOOP_FOREVER`.

use std::env;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

const GUESTS: &[&str] = &[
    "loop-forever",
    "memory-bomb",
    "panic-filter",
    "loop-on-reason",
    "reject-config",
    "bad-enricher",
    "wrong-length",
    "log-flood",
    "wrong-world",
    "counter-enricher",
    "sandbox-probe",
    "contract-0-1-0",
    "contract-0-1-1",
    "sleep-on-reason",
    "wait-on-reason",
    "foreign-import",
];

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .parent()
        .expect("tests/ is inside the workspace");
    let guests = manifest_dir.join("plugins");
    println!("cargo:rerun-if-changed={}", guests.display());
    println!("cargo:rerun-if-changed={}", root.join("plugins").display());
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    let target_dir = root.join("target").join("wasm");

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
        .arg(guests.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    for guest in GUESTS {
        command.args(["-p", guest]);
    }
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
    ] {
        command.env_remove(var);
    }
    let status = command.status().expect("run cargo for the test guests");
    assert!(
        status.success(),
        "building the test guests in tests/plugins failed"
    );

    let mut out = String::from(
        "/// Paths of the test guests, built by tests/src/build.rs.\npub mod guests {\n",
    );
    for guest in GUESTS {
        let path = target_dir
            .join("wasm32-wasip2/release")
            .join(format!("{}.wasm", guest.replace('-', "_")));
        assert!(path.is_file(), "{} was not built", path.display());
        let constant = guest.replace('-', "_").to_uppercase();
        writeln!(
            out,
            "    pub const {constant}: &str = {:?};",
            path.display().to_string()
        )
        .unwrap();
    }
    out.push_str("}\n");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    std::fs::write(out_dir.join("guests.rs"), out).expect("write guests.rs");
}
