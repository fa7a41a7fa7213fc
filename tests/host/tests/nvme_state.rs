//! The controller state machine: the transitions the driver relies on, and
//! the ones it must never take.

use rfl_host_tests::nvme_state::*;
use CtrlState::*;

const ALL: [CtrlState; 5] = [New, Live, Resetting, Deleting, Dead];

#[test]
fn transitions_follow_the_table() {
    let allowed = [
        (New, Live),
        (Resetting, Live),
        (New, Resetting),
        (Live, Resetting),
        (Dead, Resetting),
        (Resetting, Dead),
        (New, Deleting),
        (Live, Deleting),
        (Resetting, Deleting),
        (Dead, Deleting),
    ];
    for from in ALL {
        for to in ALL {
            assert_eq!(
                from.may_become(to),
                allowed.contains(&(from, to)),
                "{from:?} -> {to:?}"
            );
        }
    }
}

#[test]
fn deleting_is_final_and_resets_do_not_nest() {
    let s = State::new();
    assert_eq!(s.get(), New);
    assert_eq!(s.change(Resetting), Ok(New));
    // A second reset (another timeout, the bad-completion work) is refused
    // while one runs.
    assert_eq!(s.change(Resetting), Err(Resetting));
    assert_eq!(s.change(Live), Ok(Resetting));
    assert_eq!(s.change(Deleting), Ok(Live));
    for to in ALL {
        assert_eq!(s.change(to), Err(Deleting), "{to:?}");
    }
    assert_eq!(s.get(), Deleting);
}

#[test]
fn only_new_and_live_take_outside_commands() {
    for st in ALL {
        assert_eq!(st.takes_commands(), matches!(st, New | Live), "{st:?}");
    }
}

#[test]
fn racing_changes_take_turns() {
    use std::sync::Arc;
    // Two threads try to start a reset from Live, over and over: exactly one
    // wins each round.
    let s = Arc::new(State::new());
    s.change(Live).unwrap();
    for _ in 0..1000 {
        let wins: usize = (0..2)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || s.change(Resetting).is_ok())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| usize::from(h.join().unwrap()))
            .sum();
        assert_eq!(wins, 1);
        s.change(Live).unwrap();
    }
}

#[test]
fn change_from_moves_only_from_that_state() {
    let s = State::new();
    assert!(s.change_from(New, Resetting));
    // Probe's New -> Live must not end a reset that is running.
    assert!(!s.change_from(New, Live));
    assert_eq!(s.get(), Resetting);
    assert!(s.change_from(Resetting, Dead));
    // Not along the table.
    assert!(!s.change_from(Dead, Live));
    assert_eq!(s.get(), Dead);
}
