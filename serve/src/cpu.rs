//! The CPU features this build was compiled to use, checked at start-up so
//! that an older CPU gets a message instead of an illegal instruction.
//!
//! NOTE: the compiler may use any compiled-in feature in any function,
//! `main` included, so on a CPU without AVX at all the check itself can
//! fault before it prints. CPUs with AVX but without AVX2 or FMA reach the
//! message.

use std::process::ExitCode;

/// Exit code of a binary that stops because the CPU lacks a feature.
pub const UNSUPPORTED_CPU_EXIT_CODE: u8 = 3;

/// The x86-64-v3 features (the level `.cargo/config.toml` selects), each
/// with whether this build was compiled to use it.
#[cfg(target_arch = "x86_64")]
const BUILD_FEATURES: [(&str, bool); 8] = [
    ("avx", cfg!(target_feature = "avx")),
    ("avx2", cfg!(target_feature = "avx2")),
    ("bmi1", cfg!(target_feature = "bmi1")),
    ("bmi2", cfg!(target_feature = "bmi2")),
    ("f16c", cfg!(target_feature = "f16c")),
    ("fma", cfg!(target_feature = "fma")),
    ("lzcnt", cfg!(target_feature = "lzcnt")),
    ("movbe", cfg!(target_feature = "movbe")),
];

/// Returns the features this build was compiled to use, out of the
/// x86-64-v3 set; empty for a baseline x86-64 build or another
/// architecture.
pub fn build_features() -> Vec<&'static str> {
    #[cfg(target_arch = "x86_64")]
    {
        BUILD_FEATURES
            .iter()
            .filter(|(_, compiled)| *compiled)
            .map(|(name, _)| *name)
            .collect()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Vec::new()
    }
}

/// Returns whether the running CPU has `feature`, one of the x86-64-v3
/// names in [`build_features`]; false for any other name.
#[cfg(target_arch = "x86_64")]
pub fn cpu_has(feature: &str) -> bool {
    match feature {
        "avx" => is_x86_feature_detected!("avx"),
        "avx2" => is_x86_feature_detected!("avx2"),
        "bmi1" => is_x86_feature_detected!("bmi1"),
        "bmi2" => is_x86_feature_detected!("bmi2"),
        "f16c" => is_x86_feature_detected!("f16c"),
        "fma" => is_x86_feature_detected!("fma"),
        "lzcnt" => is_x86_feature_detected!("lzcnt"),
        "movbe" => is_x86_feature_detected!("movbe"),
        _ => false,
    }
}

/// Returns the features of `required` that `detected` reports missing.
pub fn missing_features(
    required: &[&'static str],
    detected: impl Fn(&str) -> bool,
) -> Vec<&'static str> {
    required
        .iter()
        .copied()
        .filter(|feature| !detected(feature))
        .collect()
}

/// Returns the message for a CPU that lacks `missing`, out of the
/// `required` features `binary` was compiled to use, or `None` when
/// nothing is missing.
pub fn unsupported_cpu_message(
    binary: &str,
    required: &[&str],
    missing: &[&str],
) -> Option<String> {
    if missing.is_empty() {
        return None;
    }
    Some(format!(
        "{binary}: this CPU lacks {missing}, which this binary was compiled to use. \
         It was compiled for the CPU features {required} (x86-64-v3 unless \
         RUSTFLAGS replaced the setting in .cargo/config.toml). Rebuild for any \
         x86-64 CPU with \
         `RUSTFLAGS=-Ctarget-cpu=x86-64 cargo build --release` \
         (or `RUSTFLAGS=-Ctarget-cpu=native` for this CPU).",
        missing = missing.join(", "),
        required = required.join(", "),
    ))
}

/// Checks the running CPU against [`build_features`]. On a CPU that lacks
/// one, prints the message to stderr and returns the exit code for `main`
/// to return.
///
/// # Errors
/// [`UNSUPPORTED_CPU_EXIT_CODE`] as an [`ExitCode`] when a feature is
/// missing.
pub fn check_cpu(binary: &str) -> Result<(), ExitCode> {
    #[cfg(target_arch = "x86_64")]
    {
        let required = build_features();
        let missing = missing_features(&required, cpu_has);
        if let Some(message) = unsupported_cpu_message(binary, &required, &missing) {
            eprintln!("{message}");
            return Err(ExitCode::from(UNSUPPORTED_CPU_EXIT_CODE));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = binary;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const V3: [&str; 8] = [
        "avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "lzcnt", "movbe",
    ];

    #[test]
    fn missing_features_of_avx_only_cpu() {
        // A Sandy Bridge class CPU: AVX without AVX2, FMA or the v3 bit ops.
        let missing = missing_features(&V3, |feature| feature == "avx");
        assert_eq!(
            missing,
            ["avx2", "bmi1", "bmi2", "f16c", "fma", "lzcnt", "movbe"]
        );
    }

    #[test]
    fn missing_features_none_on_v3_cpu() {
        assert!(missing_features(&V3, |_| true).is_empty());
        assert_eq!(unsupported_cpu_message("serve", &V3, &[]), None);
    }

    #[test]
    fn missing_features_empty_for_baseline_build() {
        assert!(missing_features(&[], |_| false).is_empty());
    }

    #[test]
    fn message_names_missing_and_rebuild() {
        let missing = missing_features(&V3, |feature| !matches!(feature, "avx2" | "fma"));
        let message = unsupported_cpu_message("train", &V3, &missing).expect("features missing");
        assert!(
            message.starts_with("train: this CPU lacks avx2, fma,"),
            "{message}"
        );
        assert!(
            message.contains("compiled for the CPU features avx, avx2, bmi1"),
            "{message}"
        );
        assert!(
            message.contains("RUSTFLAGS=-Ctarget-cpu=x86-64 cargo build --release"),
            "{message}"
        );
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn this_cpu_passes_check() {
        let missing = missing_features(&build_features(), cpu_has);
        assert!(missing.is_empty(), "the test machine lacks {missing:?}");
    }
}
