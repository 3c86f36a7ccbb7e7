//! `cargo run -p haxdp-config --example check_config -- FILE [--json]`: the
//! `haxdp check-config` report without the daemon binary.

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(file) = args.next() else {
        eprintln!("usage: check_config FILE [--json]");
        std::process::exit(2);
    };
    let json = args.any(|a| a == "--json");
    let (out, err, code) = haxdp_config::check_config_report(std::path::Path::new(&file), json);
    print!("{out}");
    eprint!("{err}");
    std::process::exit(code);
}
