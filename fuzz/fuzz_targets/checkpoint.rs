//! Checkpoint files and training state files.
//!
//! Input: a flag byte, then the file. Bit 0 of the flag appends the file's
//! correct checksum, so that mutations reach the checks behind it; bit 1
//! reads a training state instead of a checkpoint.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model::{
    decode_checkpoint, decode_train_state, encode_checkpoint, encode_train_state, fnv1a64, Network,
};

fuzz_target!(|input: &[u8]| {
    let Some((&flag, rest)) = input.split_first() else {
        return;
    };
    let mut file = rest.to_vec();
    if flag & 1 == 1 {
        file.extend_from_slice(&fnv1a64(rest).to_le_bytes());
    }
    if flag & 2 == 0 {
        match decode_checkpoint(&file) {
            Ok(network) => {
                check_network(&network);
                assert!(
                    encode_checkpoint(&network) == file,
                    "re-encoding changed the bytes"
                );
            }
            Err(message) => assert!(!message.is_empty()),
        }
    } else {
        match decode_train_state(&file) {
            Ok(state) => {
                check_network(&state.network);
                assert_eq!(state.momentum.len(), state.network.parameters().len());
                assert!(
                    encode_train_state(&state) == file,
                    "re-encoding changed the bytes"
                );
            }
            Err(message) => assert!(!message.is_empty()),
        }
    }
});

/// The invariants every loaded network must hold.
fn check_network(network: &Network) {
    assert_eq!(network.parameters().len(), model::parameter_count());
    assert!(network.parameters().iter().all(|value| value.is_finite()));
    let stats = network.stats();
    assert!(stats.mean.iter().all(|mean| mean.is_finite()));
    assert!(stats.std.iter().all(|std| std.is_finite() && *std > 0.0));
}
