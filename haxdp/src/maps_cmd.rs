//! `haxdp maps`: print the pinned BPF maps of this network namespace.

/// Runs `haxdp maps`; returns the process exit code.
pub fn run(_json: bool) -> anyhow::Result<i32> {
    anyhow::bail!("haxdp maps is not built yet")
}
