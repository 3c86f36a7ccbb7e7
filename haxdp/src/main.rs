use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "haxdp", version, about = "VRRP daemon with an XDP fast path, reading keepalived.conf")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the pinned BPF maps (peers, drop counters) of this network namespace.
    Maps {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Maps { json } => haxdp::maps_cmd::run(json),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("haxdp: {e:#}");
            std::process::exit(1);
        }
    }
}
