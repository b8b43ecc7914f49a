use super::*;

#[test]
fn kernel_package_comes_from_the_metapackage_dependency() {
    let out = "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n";
    assert_eq!(
        parse_kernel_depends(out).as_deref(),
        Some("linux-image-6.1.0-56-amd64")
    );
    let alt = "linux-image-amd64\n |Depends: linux-image-6.12.9-amd64\n  Depends: x\n";
    assert_eq!(
        parse_kernel_depends(alt).as_deref(),
        Some("linux-image-6.12.9-amd64")
    );
    assert_eq!(parse_kernel_depends("linux-image-amd64\n"), None);
}

#[test]
fn ldd_output_gives_every_library_and_the_loader_but_not_the_vdso() {
    let out = "\tlinux-vdso.so.1 (0x00007ffd4b5f0000)\n\
                   \tlibhwloc.so.15 => /lib/x86_64-linux-gnu/libhwloc.so.15 (0x00007f0c1c000000)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0c1be00000)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f0c1c0a0000)\n";
    assert_eq!(
        parse_ldd(out).unwrap(),
        [
            "/lib/x86_64-linux-gnu/libhwloc.so.15",
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib64/ld-linux-x86-64.so.2"
        ]
    );
    let missing = "\tlibhwloc.so.15 => not found\n";
    assert!(parse_ldd(missing)
        .unwrap_err()
        .to_string()
        .contains("libhwloc"));
}

#[test]
fn qemu_gets_one_socket_and_memory_backend_per_node() {
    let flags = NumaVmFlags {
        nodes: 4,
        cpus_per_node: 2,
        ..NumaVmFlags::default()
    };
    let args = qemu_args(Path::new("/k"), Path::new("/i"), &flags).join(" ");
    assert!(args.starts_with("-accel tcg,thread=multi "), "{args}");
    assert!(args.contains("-nic none"), "{args}");
    assert!(!args.contains("kvm"), "{args}");
    assert!(
        args.contains("-m 2048M -smp 8,sockets=4,cores=2,threads=1"),
        "{args}"
    );
    assert!(
        args.contains("memory-backend-ram,id=m3,size=512M"),
        "{args}"
    );
    assert!(
        args.contains("-numa node,nodeid=3,cpus=6-7,memdev=m3"),
        "{args}"
    );
    assert!(
        args.ends_with("-append console=ttyS0 quiet panic=-1"),
        "{args}"
    );
    let two = qemu_args(Path::new("/k"), Path::new("/i"), &NumaVmFlags::default()).join(" ");
    assert!(
        two.contains("-numa node,nodeid=1,cpus=1,memdev=m1"),
        "{two}"
    );
    assert!(two.contains("size=1024M"), "{two}");
}

#[test]
fn init_runs_the_verifier_and_powers_off() {
    let init = init_script(
        "--nodes 2 --cpus-per-node 1",
        "/lib64:/lib/x86_64-linux-gnu",
    );
    assert!(init.starts_with("#!/bin/sh\n"));
    assert!(init.contains("mount -t sysfs sysfs /sys\n"));
    assert!(init.contains("\n/bin/numa_verify --nodes 2 --cpus-per-node 1\n"));
    assert!(init.contains("LD_LIBRARY_PATH=/lib64:/lib/x86_64-linux-gnu\n"));
    assert!(init.ends_with("poweroff -f\n"));
}

#[test]
fn the_guest_waits_for_init_until_the_boot_limit_then_for_the_run() {
    let launched = Instant::now();
    let timeout = Duration::from_secs(300);
    assert_eq!(
        wait_until(launched, false, timeout),
        (launched + BOOT_LIMIT, true),
        "before init: the boot's deadline"
    );
    assert_eq!(
        wait_until(launched, true, timeout),
        (launched + timeout, false),
        "after init: the run's"
    );
    let short = Duration::from_secs(30);
    assert_eq!(
        wait_until(launched, false, short),
        (launched + short, false),
        "a run shorter than the boot limit is the run's deadline, not a boot hang"
    );
    assert_eq!(boot_limit(short), short);
    assert_eq!(boot_limit(timeout), BOOT_LIMIT);
}
