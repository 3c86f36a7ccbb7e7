use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "haxdp",
    version,
    about = "VRRP daemon with an XDP fast path, reading keepalived.conf",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a subcommand haxdp runs the daemon, so that a keepalived unit
    /// file (`keepalived -f FILE -D`) switches by changing the binary.
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Args, Clone)]
struct RunArgs {
    /// The keepalived.conf to run.
    #[arg(
        short = 'f',
        long = "use-file",
        default_value = "/etc/keepalived/keepalived.conf"
    )]
    config: PathBuf,
    /// Log level: error, warn, info, debug, trace.
    #[arg(long = "log-level", default_value = "info")]
    log_level: String,
    /// Directory for per-instance state files and the USR1 dump.
    #[arg(long, default_value = "/run/haxdp")]
    state_dir: PathBuf,
    /// Receive adverts on a raw socket only, without the XDP program.
    #[arg(long)]
    no_xdp: bool,
    /// keepalived's -n (don't fork): haxdp always runs in the foreground.
    #[arg(short = 'n', long = "dont-fork", hide = true)]
    dont_fork: bool,
    /// keepalived's -l (log to console): haxdp always logs to stderr.
    #[arg(short = 'l', long = "log-console", hide = true)]
    log_console: bool,
    /// keepalived's -D (detailed log): use --log-level debug instead.
    #[arg(short = 'D', long = "log-detail", hide = true)]
    log_detail: bool,
    /// keepalived's -P (VRRP only): haxdp is VRRP only.
    #[arg(short = 'P', long = "vrrp", hide = true)]
    vrrp_only: bool,
    /// keepalived's -p / -r pid files: not used.
    #[arg(short = 'p', long = "pid", hide = true)]
    pid_file: Option<PathBuf>,
    #[arg(short = 'r', long = "vrrp_pid", hide = true)]
    vrrp_pid_file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon in the foreground.
    Run(RunArgs),
    /// Parse and validate a keepalived.conf; print what haxdp will run.
    CheckConfig {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Print the typed model as JSON.
        #[arg(long)]
        json: bool,
    },
    /// State of every instance, from the daemon of this network namespace.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Print the pinned BPF maps (peers, drop counters) of this network namespace.
    Maps {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        None => run_daemon(cli.run),
        Some(Command::Run(args)) => run_daemon(args),
        Some(Command::CheckConfig { file, json }) => {
            let (out, err, mut code) = haxdp_config::check_config_report(&file, json);
            print!("{out}");
            eprint!("{err}");
            // What the daemon resolves when it loads the file (script users, command
            // strings) refuses it at start too: say so here rather than at `haxdp run`.
            if code == 0 {
                if let Err(e) = haxdp::spec::load(&file) {
                    eprintln!("{}", e.render());
                    code = e.exit_code();
                }
            }
            code
        }
        Some(Command::Status { json }) => match haxdp::control::query() {
            Ok(st) => {
                if json {
                    println!("{}", serde_json::to_string_pretty(&st).unwrap_or_default());
                } else {
                    print!("{}", haxdp::control::render(&st));
                }
                0
            }
            Err(e) => {
                eprintln!("haxdp status: {e}");
                1
            }
        },
        Some(Command::Maps { json }) => match haxdp::maps_cmd::run(json) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("haxdp maps: {e:#}");
                1
            }
        },
    };
    std::process::exit(code);
}

fn run_daemon(args: RunArgs) -> i32 {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // journald adds its own timestamps; keep lines short and greppable.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .init();
    let ignored: Vec<&str> = [
        (args.dont_fork, "-n"),
        (args.log_console, "-l"),
        (args.log_detail, "-D"),
        (args.vrrp_only, "-P"),
        (args.pid_file.is_some(), "-p"),
        (args.vrrp_pid_file.is_some(), "-r"),
    ]
    .into_iter()
    .filter_map(|(on, f)| on.then_some(f))
    .collect();
    if !ignored.is_empty() {
        tracing::info!(
            "keepalived option(s) {} accepted and ignored: haxdp runs in the foreground, logs to stderr and is VRRP only",
            ignored.join(" ")
        );
    }
    let opts = haxdp::daemon::RunOptions {
        config: args.config,
        state_dir: args.state_dir,
        receive: if args.no_xdp {
            haxdp::daemon::ReceiveChoice::Socket
        } else {
            haxdp::daemon::ReceiveChoice::Auto
        },
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("haxdp: cannot start the runtime: {e}");
            return 1;
        }
    };
    match rt.block_on(haxdp::daemon::run(opts)) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            1
        }
    }
}
