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

/// Returns the feature flags of the first processor in `cpuinfo`, the text
/// of Linux's `/proc/cpuinfo`, or an empty list when it has no `flags` line.
pub fn cpuinfo_flags(cpuinfo: &str) -> Vec<&str> {
    let flags = cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "flags").then_some(value)
    });
    flags.map_or_else(Vec::new, |value| value.split_whitespace().collect())
}

/// Returns whether `flags` (from [`cpuinfo_flags`]) include `feature`, one
/// of the names in [`build_features`]. Linux lists LZCNT as `abm`.
pub fn flags_include(flags: &[&str], feature: &str) -> bool {
    let flag = if feature == "lzcnt" { "abm" } else { feature };
    flags.contains(&flag)
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
/// The CPU's features come from `/proc/cpuinfo`, which lists only those the
/// kernel has enabled. `is_x86_feature_detected!` cannot serve here, because
/// it returns true for every feature the build enables at compile time.
///
/// NOTE: where `/proc/cpuinfo` cannot be read (outside Linux), no check runs.
///
/// # Errors
/// [`UNSUPPORTED_CPU_EXIT_CODE`] as an [`ExitCode`] when a feature is
/// missing.
pub fn check_cpu(binary: &str) -> Result<(), ExitCode> {
    let required = build_features();
    if required.is_empty() {
        return Ok(());
    }
    let Ok(cpuinfo) = std::fs::read_to_string("/proc/cpuinfo") else {
        return Ok(());
    };
    let flags = cpuinfo_flags(&cpuinfo);
    let missing = missing_features(&required, |feature| flags_include(&flags, feature));
    if let Some(message) = unsupported_cpu_message(binary, &required, &missing) {
        eprintln!("{message}");
        return Err(ExitCode::from(UNSUPPORTED_CPU_EXIT_CODE));
    }
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

    #[test]
    fn cpuinfo_flags_of_avx_only_cpu() {
        let cpuinfo = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) CPU E5-2670\n\
                       flags\t\t: fpu sse2 popcnt aes xsave avx lahf_lm\n\nprocessor\t: 1\n";
        let flags = cpuinfo_flags(cpuinfo);
        assert_eq!(flags.first(), Some(&"fpu"));
        assert_eq!(flags.last(), Some(&"lahf_lm"));

        let missing = missing_features(&V3, |feature| flags_include(&flags, feature));
        assert_eq!(
            missing,
            ["avx2", "bmi1", "bmi2", "f16c", "fma", "lzcnt", "movbe"]
        );
    }

    #[test]
    fn cpuinfo_abm_flag_is_lzcnt() {
        assert!(flags_include(&["abm"], "lzcnt"));
        assert!(flags_include(&["avx2"], "avx2"));
    }

    #[test]
    fn cpuinfo_without_flags_line() {
        assert!(cpuinfo_flags("processor\t: 0\n").is_empty());
        assert!(cpuinfo_flags("").is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_cpu_passes_check() {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").expect("Linux has /proc/cpuinfo");
        let flags = cpuinfo_flags(&cpuinfo);
        let missing = missing_features(&build_features(), |f| flags_include(&flags, f));
        assert!(missing.is_empty(), "the test machine lacks {missing:?}");
    }
}
