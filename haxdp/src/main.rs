use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "haxdp",
    version,
    about = "VRRP daemon with an XDP fast path, reading keepalived.conf",
    args_conflicts_with_subcommands = true,
    // keepalived's -V is --dont-release-vrrp; its version flag is -v.
    disable_version_flag = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a subcommand haxdp runs the daemon, so that a keepalived unit
    /// file (`keepalived -f FILE -D`) switches by changing the binary.
    #[command(flatten)]
    run: RunArgs,
    /// Print the version (to stderr, as keepalived) and exit.
    #[arg(short = 'v', long = "version", global = true)]
    version: bool,
    /// keepalived's --signum=SIGFUNC: print the signal number for STOP, RELOAD, DATA,
    /// STATS, STATS_CLEAR or JSON and exit.
    #[arg(long = "signum", value_name = "SIGFUNC")]
    signum: Option<String>,
}

/// The daemon's options: haxdp's own, then keepalived 2.2.7's with keepalived's meaning.
#[derive(Args, Clone, Debug, Default)]
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
    /// Directory for per-instance state files and haxdp.data (USR1).
    #[arg(long, default_value = "/run/haxdp")]
    state_dir: PathBuf,
    /// Directory for keepalived's dump files (keepalived.data, .stats, .json) written on
    /// USR1, USR2, STATS_CLEAR and JSON; default $TMPDIR or /tmp, as keepalived.
    #[arg(long)]
    dump_dir: Option<PathBuf>,
    /// Seconds the stop sequence waits for notify_stop / STOP scripts.
    #[arg(long, default_value_t = 5.0)]
    stop_timeout: f64,
    /// Receive adverts on a raw socket only, without the XDP program.
    #[arg(long)]
    no_xdp: bool,
    /// Internal: started by a running daemon's `haxdp upgrade`, which hands its state over
    /// on this fd.
    #[arg(long, value_name = "FD", hide = true)]
    handover_fd: Option<i32>,
    /// Serve Prometheus metrics at http://ADDR:PORT/metrics (keepalived-exporter's names
    /// and labels); off by default.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics_listen: Option<std::net::SocketAddr>,

    /// keepalived -t/--config-test[=LOG_FILE]: check the configuration and exit (0 good,
    /// 4 errors), the report to stderr or LOG_FILE.
    #[arg(short = 't', long = "config-test", value_name = "LOG_FILE", num_args = 0..=1, require_equals = true)]
    config_test: Option<Option<PathBuf>>,
    /// keepalived -V/--dont-release-vrrp: leave the VIPs on the interface at stop.
    #[arg(short = 'V', long = "dont-release-vrrp")]
    dont_release_vrrp: bool,
    /// keepalived -X/--release-vips: release the VIPs on leaving MASTER (haxdp always does).
    #[arg(short = 'X', long = "release-vips")]
    release_vips: bool,
    /// keepalived -i/--config-id ID: which `@ID` lines apply (default: the short host name).
    #[arg(short = 'i', long = "config-id", value_name = "ID")]
    config_id: Option<String>,
    /// keepalived -s/--namespace NAME: run in network namespace NAME (/run/netns/NAME).
    #[arg(short = 's', long = "namespace", value_name = "NAME")]
    namespace: Option<String>,
    /// keepalived -d/--dump-conf: log the configuration as read at start.
    #[arg(short = 'd', long = "dump-conf")]
    dump_conf: bool,
    /// keepalived -u/--umask=MASK: umask for the files the daemon creates (octal).
    #[arg(short = 'u', long = "umask", value_name = "MASK")]
    umask: Option<String>,
    /// keepalived -p/--pid=FILE: write the daemon's pid to FILE.
    #[arg(short = 'p', long = "pid", value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// keepalived -r/--vrrp_pid=FILE: write the (VRRP) daemon's pid to FILE.
    #[arg(short = 'r', long = "vrrp_pid", value_name = "FILE")]
    vrrp_pid_file: Option<PathBuf>,
    /// keepalived -P/--vrrp: VRRP only (haxdp is VRRP only).
    #[arg(short = 'P', long = "vrrp")]
    vrrp_only: bool,
    /// keepalived -C/--check: health checkers only; haxdp has none and refuses it.
    #[arg(short = 'C', long = "check")]
    check_only: bool,
    /// keepalived -n/--dont-fork (haxdp always runs in the foreground).
    #[arg(short = 'n', long = "dont-fork")]
    dont_fork: bool,
    /// keepalived -l/--log-console (haxdp logs to stderr, or journald under systemd).
    #[arg(short = 'l', long = "log-console")]
    log_console: bool,
    /// keepalived -D/--log-detail (use --log-level debug for more).
    #[arg(short = 'D', long = "log-detail")]
    log_detail: bool,
    /// keepalived -S/--log-facility: not acted on (haxdp does not use syslog).
    #[arg(short = 'S', long = "log-facility", value_name = "FACILITY")]
    log_facility: Option<String>,
    /// keepalived -G/--no-syslog: haxdp does not use syslog.
    #[arg(short = 'G', long = "no-syslog")]
    no_syslog: bool,
    /// keepalived -g/--log-file[=FILE]: not acted on.
    #[arg(short = 'g', long = "log-file", value_name = "FILE", num_args = 0..=1, require_equals = true)]
    log_file: Option<Option<PathBuf>>,
    /// keepalived --flush-log-file: not acted on.
    #[arg(long = "flush-log-file")]
    flush_log_file: bool,
    /// keepalived -x/--snmp: not acted on (no SNMP subagent).
    #[arg(short = 'x', long = "snmp")]
    snmp: bool,
    /// keepalived -A/--snmp-agent-socket=FILE: not acted on.
    #[arg(short = 'A', long = "snmp-agent-socket", value_name = "FILE")]
    snmp_agent_socket: Option<String>,
    /// keepalived -R/--dont-respawn (haxdp has no child processes to respawn).
    #[arg(short = 'R', long = "dont-respawn")]
    dont_respawn: bool,
    /// keepalived -I/--dont-release-ipvs (no IPVS in haxdp).
    #[arg(short = 'I', long = "dont-release-ipvs")]
    dont_release_ipvs: bool,
    /// keepalived -B/--no_bfd (no BFD in haxdp).
    #[arg(short = 'B', long = "no_bfd")]
    no_bfd: bool,
    /// keepalived --all: not acted on.
    #[arg(long = "all")]
    all: bool,
    /// keepalived -a/--address-monitoring: not acted on.
    #[arg(short = 'a', long = "address-monitoring")]
    address_monitoring: bool,
    /// keepalived -c/--checkers_pid=FILE: no checker process.
    #[arg(short = 'c', long = "checkers_pid", value_name = "FILE")]
    checkers_pid: Option<PathBuf>,
    /// keepalived -b/--bfd_pid=FILE: no BFD process.
    #[arg(short = 'b', long = "bfd_pid", value_name = "FILE")]
    bfd_pid: Option<PathBuf>,
    /// keepalived -m/--core-dump: not acted on.
    #[arg(short = 'm', long = "core-dump")]
    core_dump: bool,
    /// keepalived -M/--core-dump-pattern[=PATN]: not acted on.
    #[arg(short = 'M', long = "core-dump-pattern", value_name = "PATN", num_args = 0..=1, require_equals = true)]
    core_dump_pattern: Option<Option<String>>,
    /// keepalived -e/--all-config: not acted on (a missing include is reported by check-config).
    #[arg(short = 'e', long = "all-config")]
    all_config: bool,
}

impl RunArgs {
    /// The keepalived options given that haxdp does nothing for, each with why, to be
    /// named once at start.
    fn not_acted_on(&self) -> Vec<String> {
        let mut v = Vec::new();
        let mut say = |on: bool, s: &str| {
            if on {
                v.push(s.to_string());
            }
        };
        say(self.dont_fork, "-n (haxdp always runs in the foreground)");
        say(
            self.log_console,
            "-l (haxdp logs to stderr, or to journald under systemd)",
        );
        say(self.log_detail, "-D (use --log-level debug for more)");
        say(self.vrrp_only, "-P (haxdp is VRRP only)");
        say(
            self.release_vips,
            "-X (haxdp always releases the VIPs on leaving MASTER)",
        );
        say(
            self.log_facility.is_some(),
            "-S (haxdp does not log through syslog)",
        );
        say(self.no_syslog, "-G (haxdp does not log through syslog)");
        say(self.log_file.is_some(), "-g (no log file; stderr/journald)");
        say(self.flush_log_file, "--flush-log-file (no log file)");
        say(self.snmp, "-x (no SNMP; see --metrics-listen)");
        say(self.snmp_agent_socket.is_some(), "-A (no SNMP)");
        say(self.dont_respawn, "-R (no child processes)");
        say(self.dont_release_ipvs, "-I (no IPVS)");
        say(self.no_bfd, "-B (no BFD)");
        say(self.all, "--all (no child processes)");
        say(self.address_monitoring, "-a (no address monitoring log)");
        say(self.checkers_pid.is_some(), "-c (no checker process)");
        say(self.bfd_pid.is_some(), "-b (no BFD process)");
        say(self.core_dump, "-m (core dumps as the system sets them)");
        say(
            self.core_dump_pattern.is_some(),
            "-M (core_pattern left alone)",
        );
        say(self.all_config, "-e (missing includes: see check-config)");
        v
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon in the foreground.
    Run(Box<RunArgs>),
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
    /// Restart the daemon of this network namespace without moving a VIP: it starts the
    /// binary now on disk with its own command line and hands it every instance's state
    /// (the package's upgrade path; `systemctl restart` is a stop and a start, a failover).
    Upgrade,
    /// Print the pinned BPF maps (peers, drop counters) of this network namespace.
    Maps {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Write the man page haxdp.8 and the bash and zsh completions into DIR (packaging).
    #[command(hide = true)]
    GenerateAssets { dir: PathBuf },
}

fn main() {
    haxdp::clock::mark_process_start();
    haxdp::handover::record_exe();
    let cli = Cli::parse();
    if cli.version {
        eprintln!(
            "haxdp {} (VRRP daemon reading keepalived.conf; keepalived 2.2.7 command line)",
            haxdp::handover::version()
        );
        std::process::exit(0);
    }
    if let Some(name) = &cli.signum {
        // keepalived's get_signum: the number on stdout, exit 0; else exit 1.
        match haxdp::ops::signum(name) {
            Some(n) => {
                println!("{n}");
                std::process::exit(0);
            }
            None => {
                eprintln!("Unknown sigfunc {name}");
                std::process::exit(1);
            }
        }
    }
    let code = match cli.command {
        None => run_daemon(cli.run),
        Some(Command::Run(args)) => run_daemon(*args),
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
        Some(Command::Upgrade) => match haxdp::control::upgrade() {
            Ok(a) => {
                if a.ok {
                    println!("haxdp upgrade: {}", a.message);
                    0
                } else {
                    eprintln!("haxdp upgrade: {}", a.message);
                    1
                }
            }
            Err(e) => {
                eprintln!("haxdp upgrade: {e}");
                1
            }
        },
        Some(Command::GenerateAssets { dir }) => match generate_assets(&dir) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("haxdp generate-assets: {e}");
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
    if let Err(e) = haxdp::ops::neutralize_early() {
        eprintln!("haxdp: cannot set up signal handling: {e}");
        return 1;
    }
    if let Some(id) = &args.config_id {
        haxdp_config::set_config_id(id);
    }
    if let Some(target) = &args.config_test {
        return config_test(&args.config, target.as_deref());
    }
    if args.check_only {
        eprintln!("haxdp: -C (health checkers only) would run nothing: haxdp is the VRRP half of keepalived");
        return 1;
    }
    if let Some(mask) = &args.umask {
        match u32::from_str_radix(mask.trim_start_matches("0o"), 8) {
            // SAFETY: umask(2) cannot fail.
            Ok(m) if m <= 0o777 => unsafe {
                libc::umask(m as libc::mode_t);
            },
            _ => {
                eprintln!("haxdp: invalid umask {mask} (octal, e.g. 022)");
                return 1;
            }
        }
    }
    if let Some(ns) = &args.namespace {
        // Before any thread exists: setns(2) moves only the calling thread.
        if let Err(e) = enter_netns(ns) {
            eprintln!("haxdp: cannot enter network namespace {ns}: {e}");
            return 1;
        }
    }
    haxdp::logging::init(&args.log_level);
    let not_acted_on = args.not_acted_on();
    if !not_acted_on.is_empty() {
        tracing::info!(
            "keepalived option(s) accepted, nothing to do: {}",
            not_acted_on.join(", ")
        );
    }
    if args.dump_conf {
        let (out, _, _) = haxdp_config::check_config_report(&args.config, false);
        for line in out.lines() {
            tracing::info!("config: {line}");
        }
    }
    haxdp::ops::set(haxdp::ops::Options {
        dump_dir: args
            .dump_dir
            .clone()
            .unwrap_or_else(haxdp::ops::default_dump_dir),
        dont_release_vrrp: args.dont_release_vrrp,
        stop_timeout: std::time::Duration::from_secs_f64(args.stop_timeout.clamp(0.0, 3600.0)),
        metrics_listen: args.metrics_listen,
    });
    // A successor binds the metrics port once its predecessor has gone (`handover`).
    if let Some(addr) = args.metrics_listen.filter(|_| args.handover_fd.is_none()) {
        if let Err(e) = haxdp::metrics::start(addr) {
            tracing::error!("cannot serve metrics on {addr}: {e}");
            return 1;
        }
        tracing::info!("metrics at http://{addr}/metrics");
    }
    let pid_files: Vec<PathBuf> = [args.pid_file.clone(), args.vrrp_pid_file.clone()]
        .into_iter()
        .flatten()
        .collect();
    for p in &pid_files {
        let pid = format!("{}\n", std::process::id());
        if let Err(e) = haxdp::ops::write_file_nofollow(p, pid.as_bytes()) {
            tracing::error!("cannot write pid file {}: {e}", p.display());
        }
    }
    let opts = haxdp::daemon::RunOptions {
        config: args.config,
        state_dir: args.state_dir,
        receive: if args.no_xdp {
            haxdp::daemon::ReceiveChoice::Socket
        } else {
            haxdp::daemon::ReceiveChoice::Auto
        },
        handover_fd: args.handover_fd,
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
    let code = match rt.block_on(haxdp::daemon::run(opts)) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            1
        }
    };
    // Handed over, the pid files name the successor (which wrote them).
    if !haxdp::handover::HANDED_OVER.load(std::sync::atomic::Ordering::SeqCst) {
        for p in &pid_files {
            let _ = std::fs::remove_file(p);
        }
    }
    code
}

/// keepalived -t: check the file, report to stderr or `log_file`; keepalived's exit codes
/// (0 good, 4 the configuration cannot run).
fn config_test(file: &std::path::Path, log_file: Option<&std::path::Path>) -> i32 {
    let (out, mut err, code) = haxdp_config::check_config_report(file, false);
    let mut code = code;
    if code == 0 {
        if let Err(e) = haxdp::spec::load(file) {
            err.push_str(&e.render());
            err.push('\n');
            code = e.exit_code();
        }
    }
    let report = format!("{out}{err}");
    match log_file {
        Some(p) => {
            if let Err(e) = haxdp::ops::write_file_nofollow(p, report.as_bytes()) {
                eprintln!("haxdp: cannot write {}: {e}", p.display());
            }
        }
        None => eprint!("{report}"),
    }
    if code == 0 {
        0
    } else {
        4
    }
}

/// haxdp(8) from the clap definitions (clap_mangen) with a section on signals and files,
/// and the shell completions (clap_complete): `haxdp.8`, `haxdp.bash`, `_haxdp`.
fn generate_assets(dir: &std::path::Path) -> std::io::Result<()> {
    use clap::CommandFactory;
    std::fs::create_dir_all(dir)?;
    let cmd = Cli::command();
    let man = clap_mangen::Man::new(cmd.clone()).section("8");
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    man.render_subcommands_section(&mut page)?;
    page.extend_from_slice(MAN_EXTRA.as_bytes());
    man.render_version_section(&mut page)?;
    std::fs::write(dir.join("haxdp.8"), page)?;
    for (shell, name) in [
        (clap_complete::Shell::Bash, "haxdp.bash"),
        (clap_complete::Shell::Zsh, "_haxdp"),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "haxdp", &mut out);
        std::fs::write(dir.join(name), out)?;
    }
    Ok(())
}

/// The parts of haxdp(8) that are not options: signals, files, systemd, keepalived.
const MAN_EXTRA: &str = r#".SH SIGNALS
keepalived 2.2.7's signals, with its numbers (\fB\-\-signum\fR prints them):
.TP
\fBTERM\fR, \fBINT\fR, \fBQUIT\fR (STOP, 15)
Stop: every master sends priority 0 and releases its VIPs (kept with \fB\-V\fR), then
notify_stop and the generic notify's STOP run for every instance, bounded by
\fB\-\-stop\-timeout\fR; each state file then says STATE=STOP; exit 0.
.TP
\fBHUP\fR (RELOAD, 1)
Reload keepalived.conf; a file with errors is refused and the running configuration stays.
.TP
\fBUSR1\fR (DATA, 10)
Write keepalived.data to the dump directory and haxdp.data to the state directory.
.TP
\fBUSR2\fR (STATS, 12)
Write keepalived.stats.
.TP
\fBSIGRTMAX\-1\fR (STATS_CLEAR, 63)
Write keepalived.stats, then clear the counters.
.TP
\fBSIGRTMIN+2\fR (JSON, 36)
Write keepalived.json.
.PP
Every other signal whose default would end the process (ALRM, PWR, real-time signals, ...)
is caught and does nothing: only the stop sequence ends the daemon.
.SH FILES
.TP
\fI/etc/keepalived/keepalived.conf\fR
The configuration (\fB\-f\fR).
.TP
\fI/run/haxdp/NAME.state\fR
STATE=MASTER, BACKUP, FAULT or STOP per instance (\fB\-\-state\-dir\fR).
.TP
\fI/tmp/keepalived.data\fR, \fI/tmp/keepalived.stats\fR, \fI/tmp/keepalived.json\fR
keepalived's dump files, where keepalived writes them ($TMPDIR, or \fB\-\-dump\-dir\fR);
written without following symlinks.
.TP
\fI/etc/default/haxdp\fR
DAEMON_ARGS for haxdp.service.
.SH SYSTEMD
haxdp.service is Type=notify: READY=1 once every instance runs, RELOADING=1 and READY=1
around a reload (STATUS says whether the file was refused), STOPPING=1, and WATCHDOG=1
from the engine loop at half of WatchdogSec. Under journald the log is written natively,
with priorities. It conflicts with keepalived.service: both would own the same VRIDs.
.SH SEE ALSO
keepalived(8), keepalived.conf(5), systemd.service(5)
"#;

/// keepalived -s NAME: join the network namespace `ip netns` calls NAME.
fn enter_netns(name: &str) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    if name.contains('/') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a namespace name has no '/'",
        ));
    }
    let f = std::fs::File::open(std::path::Path::new("/run/netns").join(name))?;
    // SAFETY: f is an open namespace file descriptor for the duration of the call.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_args(argv: &[&str]) -> RunArgs {
        let cli = Cli::try_parse_from(std::iter::once("haxdp").chain(argv.iter().copied()))
            .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        assert!(cli.command.is_none(), "{argv:?} parsed as a subcommand");
        cli.run
    }

    /// keepalived 2.2.7's command line (`getopt_long` with
    /// `:vhlndu:DRS:f:p:i:es:mM::g::Gt::PCr:VXac:ITBb:xA:`), parsed with its meaning.
    #[test]
    fn keepalived_flags_parse_as_keepalived_parses_them() {
        let a = run_args(&["-V"]);
        assert!(
            a.dont_release_vrrp,
            "-V is --dont-release-vrrp, not the version"
        );
        let a = run_args(&["--dont-release-vrrp", "-X"]);
        assert!(a.dont_release_vrrp && a.release_vips);
        let a = run_args(&["-t"]);
        assert_eq!(a.config_test, Some(None));
        let a = run_args(&["--config-test=/tmp/ct.log"]);
        assert_eq!(a.config_test, Some(Some(PathBuf::from("/tmp/ct.log"))));
        let a = run_args(&["-i", "lb1", "-s", "blue"]);
        assert_eq!(a.config_id.as_deref(), Some("lb1"));
        assert_eq!(a.namespace.as_deref(), Some("blue"));
        let a = run_args(&["--config-id=lb2", "--namespace=red"]);
        assert_eq!(a.config_id.as_deref(), Some("lb2"));
        assert_eq!(a.namespace.as_deref(), Some("red"));
        let a = run_args(&["-S", "local1", "-G", "-d", "-x"]);
        assert_eq!(a.log_facility.as_deref(), Some("local1"));
        assert!(a.no_syslog && a.dump_conf && a.snmp);
        let a = run_args(&["--log-facility=7"]);
        assert_eq!(a.log_facility.as_deref(), Some("7"));
        // Bundled short flags, as Debian's unit and /etc/default/keepalived write them.
        let a = run_args(&["-nlD", "-P"]);
        assert!(a.dont_fork && a.log_console && a.log_detail && a.vrrp_only);
        let a = run_args(&[
            "-f",
            "/etc/keepalived/k.conf",
            "-p",
            "/run/k.pid",
            "-r",
            "/run/v.pid",
        ]);
        assert_eq!(a.config, PathBuf::from("/etc/keepalived/k.conf"));
        assert_eq!(a.pid_file, Some(PathBuf::from("/run/k.pid")));
        assert_eq!(a.vrrp_pid_file, Some(PathBuf::from("/run/v.pid")));
        let a = run_args(&["--use-file=/x.conf", "--pid=/p", "--vrrp_pid=/r"]);
        assert_eq!(a.config, PathBuf::from("/x.conf"));
        let a = run_args(&["-u", "022", "-R", "-I", "-B", "-a", "-e", "-m", "--all"]);
        assert_eq!(a.umask.as_deref(), Some("022"));
        assert!(a.dont_respawn && a.dont_release_ipvs && a.no_bfd && a.address_monitoring);
        assert!(a.all_config && a.core_dump && a.all);
        let a = run_args(&["-g", "-M"]);
        assert_eq!(a.log_file, Some(None));
        assert_eq!(a.core_dump_pattern, Some(None));
        let a = run_args(&[
            "--log-file=/var/log/k.log",
            "-A",
            "/s",
            "-c",
            "/c",
            "-b",
            "/b",
        ]);
        assert_eq!(a.log_file, Some(Some(PathBuf::from("/var/log/k.log"))));
        assert!(a.snmp_agent_socket.is_some() && a.checkers_pid.is_some() && a.bfd_pid.is_some());
        let a = run_args(&["-C"]);
        assert!(a.check_only);
    }

    #[test]
    fn version_and_signum_are_top_level() {
        let cli = Cli::try_parse_from(["haxdp", "-v"]).unwrap();
        assert!(cli.version);
        let cli = Cli::try_parse_from(["haxdp", "--version"]).unwrap();
        assert!(cli.version);
        let cli = Cli::try_parse_from(["haxdp", "--signum=JSON"]).unwrap();
        assert_eq!(cli.signum.as_deref(), Some("JSON"));
        let cli = Cli::try_parse_from(["haxdp", "--signum", "STATS_CLEAR"]).unwrap();
        assert_eq!(cli.signum.as_deref(), Some("STATS_CLEAR"));
    }

    #[test]
    fn options_not_acted_on_are_named() {
        let a = run_args(&["-x", "-S", "local1", "-n", "-V"]);
        let named = a.not_acted_on().join(", ");
        assert!(named.contains("-x") && named.contains("-S") && named.contains("-n"));
        assert!(!named.contains("-V"), "-V is acted on: {named}");
    }

    #[test]
    fn subcommands_still_parse() {
        let cli = Cli::try_parse_from(["haxdp", "status", "--json"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Status { json: true })));
        let cli = Cli::try_parse_from(["haxdp", "run", "-f", "/k.conf", "-V"]).unwrap();
        match cli.command {
            Some(Command::Run(a)) => assert!(a.dont_release_vrrp),
            _ => panic!("run"),
        }
    }
}
