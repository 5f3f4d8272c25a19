//! A wasi:cli command (it exports `wasi:cli/run`): the host must refuse to
//! load it as a plugin, with a message that names the expected worlds.

fn main() {
    println!("I am a command, not an Aetherius plugin");
}
