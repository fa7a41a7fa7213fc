//! The per-entity frame-time statistics behind debugfs `timing`.

use rfl_host_tests::vimc::timing::*;

#[test]
fn records_last_mean_and_max() {
    let t = FrameTime::new();
    assert_eq!(t.snapshot(), Snapshot::default());
    assert_eq!(t.snapshot().avg_ns(), 0);
    for ns in [30, 10, 20] {
        t.record(ns);
    }
    let s = t.snapshot();
    assert_eq!((s.frames, s.last_ns, s.total_ns, s.max_ns), (3, 20, 60, 30));
    assert_eq!(s.avg_ns(), 20);
    t.reset();
    assert_eq!(t.snapshot(), Snapshot::default());
}

#[test]
fn table_has_one_line_per_entity_and_reset_clears_all() {
    let t = Timings::new();
    t.debayer.record(1_500_000);
    t.debayer.record(500_000);
    t.raw_capture.record(7);
    let text = t.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(
        lines[1],
        "Debayer A: frames=2 last_ns=500000 avg_ns=1000000 max_ns=1500000"
    );
    assert_eq!(
        lines[4],
        "Raw Capture 0: frames=1 last_ns=7 avg_ns=7 max_ns=7"
    );
    assert!(lines[0].starts_with("Sensor A: frames=0 "));
    t.reset();
    assert!(t
        .to_string()
        .lines()
        .all(|l| l.contains("frames=0 last_ns=0 avg_ns=0 max_ns=0")));
}
