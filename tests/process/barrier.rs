//! Where membarrier(2) is unavailable: the probe the membarrier tests start with, and a
//! process that a seccomp filter forbids it.

use libtest_mimic::Failed;
use shmchan::{Barrier, ChannelIo, ErrorKind, Options};
use shmchan_testkit::unique;

use crate::harness::{check, env, gone, Peer, R};

/// Whether this process can use membarrier channels. Where it cannot (a kernel before 4.16 or
/// with the registration bug, a sandbox), the tests that need them say so and stop — unless
/// `SHMCHAN_REQUIRE_MEMBARRIER` is set, as CI sets it, which turns that into a failure.
pub fn membarrier_available() -> Result<bool, Failed> {
    let name = unique("mbprobe");
    match ChannelIo::<u64>::create(&name, Options::new().barrier(Barrier::Membarrier)) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::MembarrierUnavailable => {
            if std::env::var_os("SHMCHAN_REQUIRE_MEMBARRIER").is_some() {
                return Err(format!("SHMCHAN_REQUIRE_MEMBARRIER is set: {e}").into());
            }
            eprintln!("skipped, membarrier channels unavailable here: {e}");
            Ok(false)
        }
        Err(e) => Err(e.to_string().into()),
    }
}

/// A process that may not call membarrier(2) (seccomp) gets `MembarrierUnavailable` for a
/// membarrier channel, uses a fence channel normally, and creates fence channels by default.
pub fn membarrier_forbidden_by_seccomp() -> R {
    if !membarrier_available()? {
        return Ok(());
    }
    let (a, b, c, d) = (
        unique("mb"),
        unique("fence"),
        unique("auto"),
        unique("asked"),
    );
    let mb = ChannelIo::<u64>::create(&a, Options::new().barrier(Barrier::Membarrier))?;
    check(mb.barrier() == Barrier::Membarrier, "membarrier channel")?;
    let fence = ChannelIo::<u64>::create(&b, Options::new().barrier(Barrier::Fence))?;
    fence.writer()?.blocking_put(&[4, 5, 6])?;
    let out = Peer::spawn(
        "no_membarrier",
        &[
            ("NAME", a.clone()),
            ("NAME_B", b.clone()),
            ("NAME_C", c.clone()),
            ("NAME_D", d.clone()),
        ],
    )
    .success()?;
    let want = "open membarrier: unavailable\n\
                fence channel: [4, 5, 6]\n\
                create auto: Ok(Fence)\n\
                create membarrier: unavailable";
    check(out == want, format!("child said {out:?}"))?;
    drop((mb, fence));
    check(
        gone(&a) && gone(&b) && gone(&c) && gone(&d),
        "channels left behind",
    )
}

/// Forbids membarrier(2) in this process (a seccomp filter answering EPERM, as a sandbox
/// would), then reports what opening and creating channels does.
pub fn role_no_membarrier() -> Result<(), String> {
    forbid_membarrier()?;
    // The channel made with membarrier by the parent: refused, with the typed error.
    match ChannelIo::<u64>::open(&env("NAME")) {
        Err(e) if e.kind() == ErrorKind::MembarrierUnavailable => {
            println!("open membarrier: unavailable")
        }
        other => println!("open membarrier: {:?}", other.map(|c| c.barrier())),
    }
    // The fence channel made by the parent: usable; read what it holds.
    let chan = ChannelIo::<u64>::open(&env("NAME_B")).map_err(|e| e.to_string())?;
    let mut r = chan.reader().map_err(|e| e.to_string())?;
    let mut got = [0u64; 3];
    r.blocking_get(&mut got).map_err(|e| e.to_string())?;
    println!("fence channel: {got:?}");
    // Creating: Auto falls back to a fence; asking for membarrier is refused.
    let auto = ChannelIo::<u64>::create(&env("NAME_C"), Options::new());
    println!(
        "create auto: {:?}",
        auto.map(|c| c.barrier()).map_err(|e| e.to_string())
    );
    match ChannelIo::<u64>::create(&env("NAME_D"), Options::new().barrier(Barrier::Membarrier)) {
        Err(e) if e.kind() == ErrorKind::MembarrierUnavailable => {
            println!("create membarrier: unavailable")
        }
        other => println!("create membarrier: {:?}", other.map(|c| c.barrier())),
    }
    Ok(())
}

/// Installs a seccomp filter that answers membarrier(2) with EPERM in this process.
fn forbid_membarrier() -> Result<(), String> {
    let filter = [
        // Load the system call number (offset 0 of struct seccomp_data).
        libc::sock_filter {
            code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
            jt: 0,
            jf: 0,
            k: 0,
        },
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: libc::SYS_membarrier as u32,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        },
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prctl with these arguments only changes this process's own privileges and
    // system call filter; `prog` points at `filter`, both alive for the call.
    let ok = unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
            && libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog,
            ) == 0
    };
    if !ok {
        return Err(format!("seccomp: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}
