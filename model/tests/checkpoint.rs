//! Checkpoint round trips and the rejection of each kind of corruption.

use std::fs;
use std::path::Path;

use data::ChannelStats;
use model::{load_checkpoint, save_checkpoint, ModelError, Network, MAGIC};

fn stats() -> ChannelStats {
    ChannelStats {
        mean: [0.49, 0.48, 0.45],
        std: [0.25, 0.24, 0.26],
    }
}

fn saved(dir: &Path) -> (Network, std::path::PathBuf, Vec<u8>) {
    let network = Network::new(11, 0.25, stats()).expect("network");
    let path = dir.join("model.ckpt");
    save_checkpoint(&network, &path).expect("save");
    let bytes = fs::read(&path).expect("read back");
    (network, path, bytes)
}

/// Writes `bytes` to a new file and returns the load error's message.
fn load_error(dir: &Path, bytes: &[u8]) -> String {
    let path = dir.join("corrupt.ckpt");
    fs::write(&path, bytes).expect("write corrupt file");
    match load_checkpoint(&path) {
        Ok(_) => panic!("corrupt checkpoint loaded"),
        Err(ModelError::Checkpoint { reason, .. }) => reason,
        Err(other) => panic!("unexpected error kind: {other}"),
    }
}

/// Offset of the first parameter byte: header of magic, version, tensor
/// count and ten (rank, dims) entries, then 6 normalisation floats, the
/// dropout and the parameter count.
fn params_offset() -> usize {
    let shapes: usize = model::TENSORS.iter().map(|t| 4 + 4 * t.shape.len()).sum();
    8 + 4 + 4 + shapes + 24 + 4 + 8
}

/// Recomputes the trailing FNV-1a checksum after an edit.
fn reseal(bytes: &mut [u8]) {
    let body = bytes.len() - 8;
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for &byte in &bytes[..body] {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    bytes[body..].copy_from_slice(&hash.to_le_bytes());
}

#[test]
fn round_trip_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (network, path, bytes) = saved(dir.path());
    assert_eq!(&bytes[..8], &MAGIC);
    assert_eq!(
        bytes.len(),
        params_offset() + 4 * model::parameter_count() + 8
    );
    let loaded = load_checkpoint(&path).expect("load");
    assert_eq!(loaded, network);
}

#[test]
fn save_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_, path, _) = saved(dir.path());
    let other = Network::new(12, 0.25, stats()).unwrap();
    save_checkpoint(&other, &path).expect("overwrite");
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["model.ckpt".to_string()]);
    assert_eq!(load_checkpoint(&path).unwrap(), other);
}

#[test]
fn save_rejects_non_finite_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let mut params = Network::new(1, 0.25, stats())
        .unwrap()
        .parameters()
        .to_vec();
    params[5] = f32::NAN;
    let network = Network::from_parameters(params, 0.25, stats()).unwrap();
    let path = dir.path().join("nan.ckpt");
    let err = save_checkpoint(&network, &path).unwrap_err();
    assert!(matches!(err, ModelError::NonFinite(_)), "{err}");
    assert!(err.to_string().contains("parameter 5"), "{err}");
    assert!(!path.exists());
}

#[test]
fn save_into_missing_folder_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let network = Network::new(1, 0.25, stats()).unwrap();
    let path = dir.path().join("no-such-folder").join("m.ckpt");
    let err = save_checkpoint(&network, &path).unwrap_err();
    assert!(matches!(err, ModelError::Io { .. }), "{err}");
    assert!(err.to_string().contains("no-such-folder"), "{err}");
}

#[test]
fn load_missing_file_is_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_checkpoint(&dir.path().join("absent.ckpt")).unwrap_err();
    assert!(matches!(err, ModelError::Io { .. }), "{err}");
    assert!(err.to_string().contains("absent.ckpt"), "{err}");
}

#[test]
fn wrong_magic_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, mut bytes) = saved(dir.path());
    bytes[0] = b'X';
    let reason = load_error(dir.path(), &bytes);
    assert!(reason.contains("wrong magic number"), "{reason}");
}

#[test]
fn unknown_version_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, mut bytes) = saved(dir.path());
    bytes[8..12].copy_from_slice(&7u32.to_le_bytes());
    let reason = load_error(dir.path(), &bytes);
    assert!(reason.contains("unknown format version 7"), "{reason}");
}

#[test]
fn truncated_file_rejected_at_every_length() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, bytes) = saved(dir.path());
    let lengths = [0, 5, 8, 13, 40, params_offset() + 3, bytes.len() - 1];
    for len in lengths {
        let reason = load_error(dir.path(), &bytes[..len]);
        assert!(reason.starts_with("truncated"), "length {len}: {reason}");
    }
}

#[test]
fn trailing_bytes_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, mut bytes) = saved(dir.path());
    bytes.extend_from_slice(&[0, 0, 0]);
    let reason = load_error(dir.path(), &bytes);
    assert!(reason.contains("unexpected bytes"), "{reason}");
}

#[test]
fn shape_mismatch_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, mut bytes) = saved(dir.path());
    // The first tensor's first dimension (conv1 output channels) is at
    // offset 16 + 4: after magic, version, tensor count and its rank.
    bytes[20..24].copy_from_slice(&16u32.to_le_bytes());
    reseal(&mut bytes);
    let reason = load_error(dir.path(), &bytes);
    assert!(reason.contains("shape mismatch"), "{reason}");
    assert!(reason.contains("conv1.weight"), "{reason}");
}

#[test]
fn checksum_mismatch_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, mut bytes) = saved(dir.path());
    let offset = params_offset() + 100;
    bytes[offset] ^= 0x01;
    let reason = load_error(dir.path(), &bytes);
    assert!(reason.contains("checksum mismatch"), "{reason}");
}

#[test]
fn non_finite_parameter_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, mut bytes) = saved(dir.path());
    let offset = params_offset() + 4 * 9;
    bytes[offset..offset + 4].copy_from_slice(&f32::INFINITY.to_le_bytes());
    reseal(&mut bytes);
    let reason = load_error(dir.path(), &bytes);
    assert!(reason.contains("parameter 9 is inf"), "{reason}");
}

#[test]
fn invalid_normalisation_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, mut bytes) = saved(dir.path());
    // The first standard deviation follows the three means.
    let offset = params_offset() - 8 - 4 - 12;
    bytes[offset..offset + 4].copy_from_slice(&0.0f32.to_le_bytes());
    reseal(&mut bytes);
    let reason = load_error(dir.path(), &bytes);
    assert!(reason.contains("invalid normalisation"), "{reason}");
}
