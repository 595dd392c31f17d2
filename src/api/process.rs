//! What `/proc/self` says about this process: the standard `process_*` metrics' values.

/// What `/proc/self` says about this process.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ProcessStats {
    pub(crate) cpu_seconds: f64,
    pub(crate) resident_bytes: f64,
    pub(crate) virtual_bytes: f64,
    pub(crate) start_time: Option<f64>,
    pub(crate) open_fds: Option<f64>,
    pub(crate) max_fds: Option<f64>,
}

impl ProcessStats {
    pub(crate) fn read() -> Option<ProcessStats> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Unreadable under systemd's ProcSubset=pid: then there is no start time.
        let boot_time = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| s.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse::<f64>().ok());
        let (ticks, page) = (rustix::param::clock_ticks_per_second(), rustix::param::page_size());
        let mut stats = parse_stat(&stat, ticks.max(1) as f64, page.max(1) as f64, boot_time)?;
        stats.open_fds = std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as f64);
        stats.max_fds = rustix::process::getrlimit(rustix::process::Resource::Nofile).current.map(|n| n as f64);
        Some(stats)
    }
}

/// Parse `/proc/<pid>/stat` (fields after the command name, which may hold spaces and parentheses).
pub(crate) fn parse_stat(
    stat: &str,
    ticks_per_second: f64,
    page_size: f64,
    boot_time: Option<f64>,
) -> Option<ProcessStats> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After ")", field 3 (state) is index 0; utime is field 14, so index 11.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    Some(ProcessStats {
        cpu_seconds: (field(14)? + field(15)?) / ticks_per_second,
        start_time: boot_time.map(|b| b + field(22).unwrap_or(0.0) / ticks_per_second),
        virtual_bytes: field(23)?,
        resident_bytes: field(24)? * page_size,
        open_fds: None,
        max_fds: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_with_a_tricky_name() {
        let stat = "4242 (tick (d) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 150 50 0 0 20 0 5 0 1000 123456789 2048 \
                    18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let s = parse_stat(stat, 100.0, 4096.0, Some(1_700_000_000.0)).unwrap();
        assert_eq!(s.cpu_seconds, 2.0);
        assert_eq!(s.start_time, Some(1_700_000_010.0));
        assert_eq!(s.virtual_bytes, 123_456_789.0);
        assert_eq!(s.resident_bytes, 2048.0 * 4096.0);
    }

    #[test]
    fn reads_this_process() {
        let s = ProcessStats::read().expect("/proc/self is readable on Linux");
        assert!(s.resident_bytes > 0.0 && s.open_fds.unwrap() >= 1.0 && s.start_time.unwrap() > 1e9);
    }
}
