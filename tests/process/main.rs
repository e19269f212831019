//! Cross-process tests: every test here runs its peers as real processes.
//!
//! This binary is its own harness (`harness = false`, libtest-mimic): when started with
//! `SHMCHAN_TEST_ROLE` set, it plays that role (a writer, a reader, a holder...) in a child
//! process instead of running tests. Every child arms `alarm(2)` so it cannot outlive a
//! broken test, and the parent bounds every wait with a watchdog, so a bug fails a test
//! instead of hanging CI.
//!
//! [`harness`] starts the children and dispatches the roles; [`waiting`] and [`roles`] are
//! what the subjects share; each other module is one subject, its tests with the roles only
//! they use.

mod barrier;
mod closing;
mod collecting;
mod describing;
mod forking;
mod harness;
mod messages;
mod ownership;
mod peer_death;
mod roles;
mod segments;
mod streaming;
mod waiting;
mod waking;

use libtest_mimic::{Arguments, Trial};

/// One test, `module::name`, registered under `name`. With `if COND`, it runs where `COND`
/// holds and is listed as ignored elsewhere.
macro_rules! trial {
    ($module:ident :: $test:ident) => {
        Trial::test(stringify!($test), $module::$test)
    };
    ($module:ident :: $test:ident if $runs:expr) => {
        trial!($module::$test).with_ignored_flag(!$runs)
    };
}

/// The tests, in the order they start, each named once (see [`trial!`]).
macro_rules! trials {
    ($($module:ident :: $test:ident $(if $runs:expr)?),* $(,)?) => {
        vec![$(trial!($module::$test $(if $runs)?)),*]
    };
}

fn main() {
    if let Ok(role) = std::env::var(harness::ROLE) {
        std::process::exit(harness::role_main(&role));
    }
    let args = Arguments::from_args();
    let trials = trials![
        streaming::reader_first_writer_second,
        messages::message_writers_killed_and_restarted,
        messages::message_readers_killed_and_restarted,
        streaming::writer_exits_before_reader_starts,
        waking::no_spin_stress_membarrier,
        waking::no_spin_stress_fence,
        waking::pingpong_race_membarrier,
        waking::pingpong_race_fence,
        barrier::membarrier_forbidden_by_seccomp,
        closing::abort_reaches_reader_after_drain,
        closing::closed_get_removes_nothing,
        closing::reader_close_fails_waiting_put,
        peer_death::kill_writer_while_reader_waits,
        peer_death::kill_reader_while_writer_waits,
        ownership::end_taken_across_processes,
        segments::open_errors,
        describing::described_record_pairs_with_a_raw_creator,
        describing::raw_reader_pairs_with_a_described_record,
        segments::planted_segments,
        segments::corrupt_indices_are_errors,
        ownership::permission_denied_for_other_user,
        // Needs a shared-memory file system with a size limit to exceed.
        segments::no_space_at_create if segments::shm_is_limited(),
        ownership::create_or_open_race,
        streaming::fronts_are_send,
        closing::cleanup_rules,
        closing::writer_abort_before_reader_came,
        peer_death::scribbled_peer_record_cannot_hang_the_survivor,
        peer_death::unwatchable_peer_death_is_found,
        ownership::foreign_owner_and_symlinks,
        streaming::zero_copy_records_across_processes,
        forking::fork_child_leaves_the_parents_ends_alone,
        forking::fork_child_cannot_use_inherited_ends,
        forking::fork_child_exit_and_drop_leave_the_stream_alone,
        ownership::old_handle_drop_spares_a_recreated_channel,
        closing::closed_ends_cannot_be_reclaimed,
        closing::cancelled_get_removes_nothing,
        closing::long_abort_reason_is_cut_cleanly,
        ownership::tampered_files_are_foreign,
        peer_death::writer_restarts_at_random_points,
        collecting::gc_keeps_what_the_living_hold,
        segments::create_or_open_requires_the_capacity_asked_for,
    ];
    libtest_mimic::run(&args, trials).exit();
}
