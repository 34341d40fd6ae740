//! Packaging of the rotator for Lambda: release build, ELF checks and a
//! reproducible zip.

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use object::elf;
use object::read::elf::{ElfFile64, FileHeader};
use object::Endianness;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

/// Cargo profile that the rotator is built with (see the workspace `Cargo.toml`).
pub const LAMBDA_PROFILE: &str = "lambda";

/// Newest glibc symbol version that `provided.al2023` provides.
const MAX_GLIBC: (u32, u32) = (2, 34);

/// Name that Lambda's `provided.*` runtimes execute.
const ENTRY_NAME: &str = "bootstrap";

/// A failed build or an artifact Lambda could not run.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },

    #[error("`{command}` failed with {status}; its output is above")]
    Build { command: String, status: String },

    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },

    #[error("{path} is not a 64-bit ELF executable: {reason}")]
    NotElf { path: String, reason: String },

    #[error("{path} is built for ELF machine {machine}, but the function runs on x86_64; build on x86_64 Linux")]
    WrongMachine { path: String, machine: u16 },

    #[error("{path} needs {version}, newer than GLIBC_2.34 of provided.al2023; build on a system with glibc 2.34 or older, or with a glibc-pinned toolchain")]
    GlibcTooNew { path: String, version: String },

    #[error("cannot write the zip: {0}")]
    Zip(#[from] zip::result::ZipError),

    #[error("cannot write the zip: {0}")]
    Io(#[from] std::io::Error),
}

/// The zipped rotator, ready to upload.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub zip: Vec<u8>,
    pub sha256_hex: String,
}

impl Artifact {
    /// Builds the artifact from an executable's bytes.
    pub fn from_binary(binary: &[u8]) -> Result<Self, PackageError> {
        let zip = zip_bootstrap(binary)?;
        let sha256_hex = hex(&Sha256::digest(&zip));
        Ok(Artifact { zip, sha256_hex })
    }

    /// The hash as Lambda reports it in `CodeSha256`: base64 of the SHA-256.
    pub fn code_sha256(&self) -> String {
        let digest = Sha256::digest(&self.zip);
        base64::engine::general_purpose::STANDARD.encode(digest)
    }

    /// Content-addressed S3 key, so an unchanged zip is never uploaded twice.
    pub fn key(&self) -> String {
        format!("rotator/{}.zip", self.sha256_hex)
    }
}

/// Builds the rotator with the Lambda profile and returns the binary's path.
pub fn build_rotator(workspace: &Path) -> Result<PathBuf, PackageError> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(&cargo);
    command.current_dir(workspace).args([
        "build",
        "--package",
        "rotator",
        "--profile",
        LAMBDA_PROFILE,
        "--locked",
    ]);
    let description =
        format!("{cargo} build --package rotator --profile {LAMBDA_PROFILE} --locked");

    tracing::info!(command = %description, "building the rotator");
    let status = command.status().map_err(|source| PackageError::Spawn {
        command: description.clone(),
        source,
    })?;
    if !status.success() {
        return Err(PackageError::Build {
            command: description,
            status: status.to_string(),
        });
    }

    Ok(target_dir(workspace).join(LAMBDA_PROFILE).join("rotator"))
}

fn target_dir(workspace: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    }
}

/// Reads the binary and checks that `provided.al2023` on x86_64 can run it.
pub fn read_checked_binary(path: &Path) -> Result<Vec<u8>, PackageError> {
    let bytes = std::fs::read(path).map_err(|source| PackageError::Read {
        path: path.display().to_string(),
        source,
    })?;

    check_elf(&bytes, &path.display().to_string())?;
    Ok(bytes)
}

/// Checks the ELF machine and the newest glibc symbol version the binary needs.
pub fn check_elf(bytes: &[u8], path: &str) -> Result<(), PackageError> {
    let not_elf = |reason: String| PackageError::NotElf {
        path: path.to_string(),
        reason,
    };
    let file = ElfFile64::<Endianness>::parse(bytes).map_err(|err| not_elf(err.to_string()))?;
    let endian = file.endian();

    let machine = file.elf_header().e_machine(endian);
    if machine != elf::EM_X86_64 {
        return Err(PackageError::WrongMachine {
            path: path.to_string(),
            machine,
        });
    }

    for version in glibc_versions(&file).map_err(|err| not_elf(err.to_string()))? {
        if parse_glibc(&version).is_some_and(|parsed| parsed > MAX_GLIBC) {
            return Err(PackageError::GlibcTooNew {
                path: path.to_string(),
                version,
            });
        }
    }
    Ok(())
}

/// Lists the `GLIBC_*` version names in the binary's version-needed section.
fn glibc_versions(file: &ElfFile64<Endianness>) -> object::Result<Vec<String>> {
    let endian = file.endian();
    let sections = file.elf_section_table();
    let Some((mut needs, link)) = sections.gnu_verneed(endian, file.data())? else {
        return Ok(Vec::new());
    };
    let strings = sections.strings(endian, file.data(), link)?;

    let mut names = Vec::new();
    while let Some((_, mut auxiliaries)) = needs.next()? {
        while let Some(auxiliary) = auxiliaries.next()? {
            let name = String::from_utf8_lossy(auxiliary.name(endian, strings)?).into_owned();
            if name.starts_with("GLIBC_") {
                names.push(name);
            }
        }
    }
    Ok(names)
}

/// Parses `GLIBC_2.34` into `(2, 34)`; other names such as `GLIBC_PRIVATE` give `None`.
fn parse_glibc(name: &str) -> Option<(u32, u32)> {
    let mut parts = name.strip_prefix("GLIBC_")?.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |part| part.parse().ok())?;
    Some((major, minor))
}

/// Zips the binary as the single entry `bootstrap`, mode 0755, with a fixed
/// timestamp, so the same binary always gives the same bytes.
pub fn zip_bootstrap(binary: &[u8]) -> Result<Vec<u8>, PackageError> {
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(9))
        .unix_permissions(0o755)
        .last_modified_time(DateTime::default());

    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    writer.start_file(ENTRY_NAME, options)?;
    writer.write_all(binary)?;

    Ok(writer.finish()?.into_inner())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn current_executable() -> Vec<u8> {
        std::fs::read(std::env::current_exe().unwrap()).unwrap()
    }

    #[test]
    fn zip_is_reproducible() {
        let binary: Vec<u8> = current_executable().into_iter().take(4 << 20).collect();

        let first = zip_bootstrap(&binary).unwrap();
        let second = zip_bootstrap(&binary).unwrap();

        assert_eq!(first, second);
    }

    #[test]
    fn zip_holds_only_executable_bootstrap() {
        let binary = b"#!/bin/sh\necho hello\n".to_vec();

        let zip = zip_bootstrap(&binary).unwrap();
        let mut archive = zip::ZipArchive::new(Cursor::new(zip)).unwrap();

        assert_eq!(archive.len(), 1);
        let mut entry = archive.by_index(0).unwrap();
        assert_eq!(entry.name(), "bootstrap");
        assert_eq!(entry.unix_mode().map(|mode| mode & 0o777), Some(0o755));
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        assert_eq!(content, binary);
    }

    #[test]
    fn code_sha256_is_base64_of_zip_digest() {
        let artifact = Artifact::from_binary(b"binary").unwrap();

        let decoded = base64::engine::general_purpose::STANDARD
            .decode(artifact.code_sha256())
            .unwrap();

        assert_eq!(hex(&decoded), artifact.sha256_hex);
        assert_eq!(
            artifact.key(),
            format!("rotator/{}.zip", artifact.sha256_hex)
        );
    }

    #[test]
    fn test_binary_passes_elf_check() {
        // The test binary is built on this machine, which the check must accept
        // when its glibc is 2.34 or older; newer hosts report GlibcTooNew.
        let result = check_elf(&current_executable(), "test binary");

        match result {
            Ok(()) | Err(PackageError::GlibcTooNew { .. }) => {}
            Err(other) => panic!("unexpected error: {other}"),
        }
    }

    #[test]
    fn non_elf_is_rejected() {
        let err = check_elf(b"#!/bin/sh\n", "script").unwrap_err();

        assert!(matches!(err, PackageError::NotElf { .. }), "{err}");
    }

    #[test]
    fn glibc_names_parse() {
        assert_eq!(parse_glibc("GLIBC_2.34"), Some((2, 34)));
        assert_eq!(parse_glibc("GLIBC_2.2.5"), Some((2, 2)));
        assert_eq!(parse_glibc("GLIBC_2"), Some((2, 0)));
        assert_eq!(parse_glibc("GLIBC_PRIVATE"), None);
        assert!(parse_glibc("GLIBC_2.35").unwrap() > MAX_GLIBC);
    }
}
