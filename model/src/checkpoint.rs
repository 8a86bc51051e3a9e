//! The checkpoint file format.
//!
//! A checkpoint is one little-endian binary file:
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `CIFAASCK` |
//! | 4 | format version, `u32` (currently 1) |
//! | 4 | number of parameter tensors `T`, `u32` |
//! | per tensor | rank `R` as `u32`, then `R` dimensions as `u32` |
//! | 12 + 12 | normalisation: mean of red, green, blue, then their standard deviations, `f32` |
//! | 4 | dropout probability, `f32` |
//! | 8 | number of parameters `P`, `u64` |
//! | 4 P | the parameters, `f32`, tensor after tensor in the order of [`crate::TENSORS`] |
//! | 8 | FNV-1a 64-bit hash of every byte before it, `u64` |

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use data::ChannelStats;

use crate::params::{parameter_count, TENSORS};
use crate::{ModelError, Network, Result};

#[cfg(not(target_endian = "little"))]
compile_error!("checkpoints store the in-memory f32 bytes, which are little-endian only on little-endian targets");

/// The first eight bytes of every checkpoint.
pub const MAGIC: [u8; 8] = *b"CIFAASCK";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Writes `network` to `path`: into a temporary file in the same folder
/// first, synced to disk, then renamed over `path`, so an interrupted save
/// never leaves a partial file under the real name.
///
/// # Errors
/// [`ModelError::Io`] naming the file that could not be written, and
/// [`ModelError::NonFinite`] when a parameter is NaN or infinite.
pub fn save_checkpoint(network: &Network, path: &Path) -> Result<()> {
    if let Some(index) = network.params.iter().position(|x| !x.is_finite()) {
        return Err(ModelError::NonFinite(format!(
            "parameter {index} is {}; refusing to write {}",
            network.params[index],
            path.display()
        )));
    }
    write_atomically(path, &encode_checkpoint(network))
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, renames it
/// over `path` and syncs the folder.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let temporary = temporary_path(path);
    let result = write_synced(&temporary, bytes).and_then(|()| {
        fs::rename(&temporary, path).map_err(|source| ModelError::Io {
            action: "cannot rename the temporary checkpoint to",
            path: path.to_path_buf(),
            source,
        })
    });
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result?;
    sync_parent(path);
    Ok(())
}

/// Reads a checkpoint written by [`save_checkpoint`], checking the magic,
/// the version, the tensor shapes, the length, the checksum and that every
/// value is finite.
///
/// # Errors
/// [`ModelError::Io`] when the file cannot be read, and
/// [`ModelError::Checkpoint`] naming the first check that failed.
pub fn load_checkpoint(path: &Path) -> Result<Network> {
    let bytes = fs::read(path).map_err(|source| ModelError::Io {
        action: "cannot read checkpoint",
        path: path.to_path_buf(),
        source,
    })?;
    decode_checkpoint(&bytes).map_err(|reason| ModelError::Checkpoint {
        path: path.to_path_buf(),
        reason,
    })
}

/// Returns the bytes of the checkpoint of `network`, as [`save_checkpoint`]
/// writes them.
pub fn encode_checkpoint(network: &Network) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + 4 * network.params.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(TENSORS.len() as u32).to_le_bytes());
    for tensor in &TENSORS {
        out.extend_from_slice(&(tensor.shape.len() as u32).to_le_bytes());
        for &dim in tensor.shape {
            out.extend_from_slice(&(dim as u32).to_le_bytes());
        }
    }
    let stats = network.stats;
    for value in stats.mean.iter().chain(&stats.std) {
        out.extend_from_slice(&value.to_le_bytes());
    }
    out.extend_from_slice(&network.dropout.p().to_le_bytes());
    out.extend_from_slice(&(network.params.len() as u64).to_le_bytes());
    out.extend_from_slice(bytemuck::cast_slice(&network.params));
    let checksum = fnv1a64(&out);
    out.extend_from_slice(&checksum.to_le_bytes());
    out
}

/// Reads fields in order and reports a truncated file by the field it
/// could not read.
struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize, field: &str) -> std::result::Result<&'a [u8], String> {
        let end = self
            .offset
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len());
        let Some(end) = end else {
            return Err(format!(
                "truncated: the file ends at byte {} inside the {field} (needs {len} bytes at \
                 offset {})",
                self.bytes.len(),
                self.offset
            ));
        };
        let slice = &self.bytes[self.offset..end];
        self.offset = end;
        Ok(slice)
    }

    fn u32(&mut self, field: &str) -> std::result::Result<u32, String> {
        let bytes = self.take(4, field)?;
        Ok(u32::from_le_bytes(bytes.try_into().expect("4 bytes")))
    }

    fn u64(&mut self, field: &str) -> std::result::Result<u64, String> {
        let bytes = self.take(8, field)?;
        Ok(u64::from_le_bytes(bytes.try_into().expect("8 bytes")))
    }

    fn f32(&mut self, field: &str) -> std::result::Result<f32, String> {
        let bytes = self.take(4, field)?;
        Ok(f32::from_le_bytes(bytes.try_into().expect("4 bytes")))
    }
}

/// Parses the bytes of a checkpoint file with the checks of
/// [`load_checkpoint`].
///
/// # Errors
/// A message naming the first check that failed.
pub fn decode_checkpoint(bytes: &[u8]) -> std::result::Result<Network, String> {
    let mut reader = Reader { bytes, offset: 0 };
    let magic = reader.take(MAGIC.len(), "magic number")?;
    if magic != MAGIC {
        return Err(format!(
            "wrong magic number {magic:02x?}, expected {MAGIC:02x?} (\"CIFAASCK\"); this is not \
             a cifaas checkpoint"
        ));
    }
    let version = reader.u32("format version")?;
    if version != FORMAT_VERSION {
        return Err(format!(
            "unknown format version {version}; this build reads version {FORMAT_VERSION}"
        ));
    }
    check_shapes(&mut reader)?;
    let stats = read_stats(&mut reader)?;
    let dropout = reader.f32("dropout probability")?;
    let count = reader.u64("parameter count")?;
    if count != parameter_count() as u64 {
        return Err(format!(
            "parameter count {count} does not match the network's {}",
            parameter_count()
        ));
    }
    let params_bytes = reader.take(4 * parameter_count(), "parameters")?;
    let body_len = reader.offset;
    let stored = reader.u64("checksum")?;
    if reader.offset != bytes.len() {
        return Err(format!(
            "{} unexpected bytes after the checksum at offset {}",
            bytes.len() - reader.offset,
            reader.offset
        ));
    }
    let computed = fnv1a64(&bytes[..body_len]);
    if stored != computed {
        return Err(format!(
            "checksum mismatch: stored {stored:016x}, computed {computed:016x}; the file is \
             corrupt"
        ));
    }
    let params: Vec<f32> = bytemuck::pod_collect_to_vec(params_bytes);
    if let Some(index) = params.iter().position(|x| !x.is_finite()) {
        return Err(format!("parameter {index} is {}", params[index]));
    }
    Network::from_parameters(params, dropout, stats).map_err(|err| err.to_string())
}

fn check_shapes(reader: &mut Reader<'_>) -> std::result::Result<(), String> {
    let count = reader.u32("tensor count")? as usize;
    if count != TENSORS.len() {
        return Err(format!(
            "shape mismatch: {count} tensors stored, the network has {}",
            TENSORS.len()
        ));
    }
    for tensor in &TENSORS {
        let rank = reader.u32("tensor rank")? as usize;
        if rank > 8 {
            return Err(format!(
                "shape mismatch: {} has rank {rank}, expected {}",
                tensor.name,
                tensor.shape.len()
            ));
        }
        let mut shape = Vec::with_capacity(rank);
        for _ in 0..rank {
            shape.push(reader.u32("tensor shape")? as usize);
        }
        if shape != tensor.shape {
            return Err(format!(
                "shape mismatch: {} is {shape:?} in the file, the network needs {:?}",
                tensor.name, tensor.shape
            ));
        }
    }
    Ok(())
}

fn read_stats(reader: &mut Reader<'_>) -> std::result::Result<ChannelStats, String> {
    let mut values = [0.0f32; 6];
    for value in &mut values {
        *value = reader.f32("normalisation constants")?;
    }
    let stats = ChannelStats {
        mean: [values[0], values[1], values[2]],
        std: [values[3], values[4], values[5]],
    };
    let valid_mean = stats.mean.iter().all(|m| m.is_finite());
    let valid_std = stats.std.iter().all(|s| s.is_finite() && *s > 0.0);
    if !valid_mean || !valid_std {
        return Err(format!(
            "invalid normalisation constants: mean {:?}, std {:?} (each must be finite and \
             each std positive)",
            stats.mean, stats.std
        ));
    }
    Ok(stats)
}

/// Computes the 64-bit FNV-1a hash of `bytes`, the checksum that ends
/// checkpoint and training state files.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "checkpoint".into());
    path.with_file_name(format!(".{name}.tmp.{}", std::process::id()))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let io_error = |source| ModelError::Io {
        action: "cannot write checkpoint",
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::create(path).map_err(io_error)?;
    file.write_all(bytes).map_err(io_error)?;
    file.sync_all().map_err(io_error)
}

/// Syncs the folder that contains `path`, so the rename itself is durable.
/// A failure here is logged, because the file is already complete.
fn sync_parent(path: &Path) {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if let Err(err) = File::open(parent).and_then(|dir| dir.sync_all()) {
        log::warn!("cannot sync folder {}: {err}", parent.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_then_encode_keeps_bytes() {
        let stats = ChannelStats {
            mean: [0.5, 0.4, 0.3],
            std: [0.2, 0.25, 0.3],
        };
        let network = Network::new(3, 0.25, stats).unwrap();
        let bytes = encode_checkpoint(&network);
        let decoded = decode_checkpoint(&bytes).unwrap();
        assert_eq!(decoded, network);
        assert_eq!(encode_checkpoint(&decoded), bytes);
    }

    #[test]
    fn fnv1a64_known_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
