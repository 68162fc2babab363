//! The `leaktracker` command-line tool (placeholder until the gate lands).
fn main() {
    eprintln!("leaktracker: no subcommands yet");
    std::process::exit(2);
}
