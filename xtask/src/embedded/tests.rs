use super::*;

#[test]
fn qemu_runs_the_cortex_m4_board_with_semihosting_and_counts_instructions_on_request() {
    let args = qemu_args(Path::new("/fw"), false).join(" ");
    assert!(args.starts_with("-M mps2-an386 -cpu cortex-m4 "), "{args}");
    assert!(
        args.contains("-semihosting-config enable=on,target=native"),
        "{args}"
    );
    assert!(!args.contains("icount"), "{args}");
    assert!(args.ends_with("-kernel /fw"), "{args}");
    let counted = qemu_args(Path::new("/fw"), true).join(" ");
    assert!(counted.contains("-icount shift=0,"), "{counted}");
}

#[test]
fn only_the_planted_check_failing_counts_as_the_negative_control() {
    assert!(is_planted_failure(
            "embedded checks failed: 2 checks failed:\n  FAIL point-lookups: 1 wrong\n  FAIL range-scans: 2 wrong"
        ));
    assert!(!is_planted_failure(
        "FAIL point-lookups: x\nFAIL panic: overflow"
    ));
    assert!(!is_planted_failure("the firmware printed no summary"));
}

#[test]
fn thousands_are_grouped_with_commas() {
    assert_eq!(group_thousands(0), "0");
    assert_eq!(group_thousands(999), "999");
    assert_eq!(group_thousands(1_000), "1,000");
    assert_eq!(group_thousands(128_224), "128,224");
    assert_eq!(group_thousands(1_234_567), "1,234,567");
}

fn figures(overrides: &[(&str, u64)]) -> Result<Figures> {
    let mut map: BTreeMap<String, u64> = [
        ("milli_instructions_per_tick", 40_000),
        ("stack_window_bytes", 32_768),
        ("slot_bytes", 6_152),
        ("scratch_bytes", 7_168),
        ("tree_bytes", 128_224),
        ("slot_records", 256),
        ("store_nodes", 80),
        ("leaf_records", 64),
        ("inner_fanout", 64),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (w, _) in WORKLOADS {
        for (what, v) in [
            ("merge_run_stack_window_overflowed", 0),
            ("store_full", 1),
            ("merge_run_stack_bytes", 4_588),
            ("merge_run_calls", 14),
            ("tree_height", 3),
            ("records", 3_000),
            ("instructions_push", 300_000),
            ("instructions_sort", 600_000),
            ("instructions_merge", 900_000),
            ("gets", 600),
            ("gets_found", 540),
            ("instructions_get", 120_000),
            ("scanned_records", 3_000),
            ("instructions_scan", 60_000),
        ] {
            map.insert(format!("{w}.{what}"), v);
        }
    }
    for (k, v) in overrides {
        map.insert((*k).to_owned(), *v);
    }
    Figures::new(map)
}

#[test]
fn the_report_gives_the_core_alone_as_the_difference_and_records_per_mhz() {
    let footprint = elf::Sizes {
        text: 10_000,
        rodata: 2_000,
        data: 0,
        bss: 142_000,
    };
    let baseline = elf::Sizes {
        text: 4_000,
        rodata: 1_500,
        data: 0,
        bss: 500,
    };
    let report = render(&figures(&[]).unwrap(), footprint, baseline).unwrap();
    assert!(
        report.contains("| **`numatree-core` alone** (difference) | **6,500 B** | **141,500 B**"),
        "{report}"
    );
    assert!(
        report.contains("4,588 B (painted; highest of 28 calls"),
        "{report}"
    );
    // 1,800,000 instructions for 3,000 records: 600 per record.
    assert!(
        report.contains("600 instructions/record (push 100, sort 200, merge 300)"),
        "{report}"
    );
    assert!(report.contains("**1,666 records/s per MHz**"), "{report}");
    assert!(
        report.contains("| point lookup `get` | 200 instructions (mean of 600 lookups"),
        "{report}"
    );
    assert!(
        report.contains("| 20 instructions per record (every series"),
        "{report}"
    );
}

#[test]
fn figures_without_icount_or_from_an_unfilled_store_are_rejected() {
    let err = figures(&[("milli_instructions_per_tick", 12_345)])
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("-icount shift=0` is not in effect"),
        "{err}"
    );
    let err = figures(&[("narrow_ids.store_full", 0)]).err().unwrap();
    assert!(err.to_string().contains("never filled the store"), "{err}");
    let err = figures(&[("wide_ids.merge_run_stack_window_overflowed", 1)])
        .err()
        .unwrap();
    assert!(err.to_string().contains("widen stack::WINDOW"), "{err}");
}
