//! Records the git commit and whether the work tree had changes, for the
//! run records that `train` writes. Without git, or outside a repository,
//! both are `unknown`.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn main() {
    let commit = git(&["rev-parse", "HEAD"]);
    let tree = match (
        &commit,
        git(&["status", "--porcelain", "--untracked-files=no"]),
    ) {
        (Some(_), Some(status)) if status.is_empty() => "clean",
        (Some(_), Some(_)) => "dirty",
        _ => "unknown",
    };
    println!(
        "cargo:rustc-env=CIFAAS_GIT_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
    println!("cargo:rustc-env=CIFAAS_GIT_TREE={tree}");

    // Run again when the commit, the index or any workspace source changes,
    // so the recorded state follows the tree.
    if let Some(git_dir) = git(&["rev-parse", "--git-dir"]) {
        for file in ["HEAD", "index"] {
            println!(
                "cargo:rerun-if-changed={}",
                Path::new(&git_dir).join(file).display()
            );
        }
    }
    for folder in [
        "src",
        "../kernels/src",
        "../data/src",
        "../model/src",
        "../Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={folder}");
    }
}
