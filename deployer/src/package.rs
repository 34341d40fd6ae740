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
        Ok(Self::from_zip(zip_bootstrap(binary)?))
    }

    fn from_zip(zip: Vec<u8>) -> Self {
        let sha256_hex = hex(&Sha256::digest(&zip));
        Artifact { zip, sha256_hex }
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

/// Environment variables that change what `cargo build` produces, besides
/// those named `CARGO_PROFILE_*`.
const BUILD_VARIABLES: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
    "RUSTC",
    "RUSTC_WRAPPER",
];

/// Packages the workspace's rotator, reusing the zip of an earlier packaging
/// when nothing that goes into the binary has changed since.
///
/// The zip is kept in the Lambda profile's target folder under a name made of
/// [`source_fingerprint`]. When it matches, neither cargo nor the compressor
/// runs: `scripts/bench` measured 0.3 to 0.5 s for cargo's check of an
/// unchanged rotator and about 1 s for zipping it, on 2 cores.
pub fn package_workspace(workspace: &Path) -> Result<Artifact, PackageError> {
    let fingerprint = source_fingerprint(workspace)?;
    let cache_dir = target_dir(workspace).join(LAMBDA_PROFILE);
    if let Some(artifact) = cached_artifact(&cache_dir, &fingerprint) {
        tracing::info!(
            zip_bytes = artifact.zip.len(),
            sha256 = %artifact.sha256_hex,
            "reused the packaged rotator: its sources are unchanged"
        );
        return Ok(artifact);
    }

    let path = build_rotator(workspace)?;
    let binary = read_checked_binary(&path)?;
    let artifact = Artifact::from_binary(&binary)?;
    tracing::info!(path = %path.display(), zip_bytes = artifact.zip.len(), sha256 = %artifact.sha256_hex, "packaged the rotator");

    // A source edited during the build may or may not be in the binary, so
    // the zip is kept only when the inputs still match the fingerprint.
    if source_fingerprint(workspace)? == fingerprint {
        store_artifact(&cache_dir, &fingerprint, &artifact);
    }
    Ok(artifact)
}

/// Returns a hex SHA-256 of everything that decides the rotator binary: the
/// files under `rotator/`, the workspace's `Cargo.toml`, `Cargo.lock` and
/// `.cargo/config.toml`, cargo's user configuration, the compiler's
/// `rustc -vV` and the build variables of the environment.
pub fn source_fingerprint(workspace: &Path) -> Result<String, PackageError> {
    let mut hasher = Sha256::new();
    let mut files = Vec::new();
    collect_files(&workspace.join("rotator"), &mut files)?;
    files.sort();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
    let mut optional = vec![
        workspace.join("Cargo.toml"),
        workspace.join("Cargo.lock"),
        workspace.join(".cargo").join("config.toml"),
        workspace.join(".cargo").join("config"),
    ];
    if let Some(home) = cargo_home {
        optional.push(home.join("config.toml"));
        optional.push(home.join("config"));
    }
    files.extend(optional.into_iter().filter(|path| path.is_file()));

    for path in &files {
        let contents = std::fs::read(path).map_err(|source| PackageError::Read {
            path: path.display().to_string(),
            source,
        })?;
        hash_field(&mut hasher, path.to_string_lossy().as_bytes());
        hash_field(&mut hasher, &contents);
    }
    hash_field(&mut hasher, &rustc_version(workspace)?);
    let mut variables: Vec<(String, String)> = std::env::vars()
        .filter(|(name, _)| {
            BUILD_VARIABLES.contains(&name.as_str()) || name.starts_with("CARGO_PROFILE_")
        })
        .collect();
    variables.sort();
    for (name, value) in variables {
        hash_field(&mut hasher, name.as_bytes());
        hash_field(&mut hasher, value.as_bytes());
    }
    Ok(hex(&hasher.finalize()))
}

/// Adds a length-prefixed field, so that no two lists of fields hash alike.
fn hash_field(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), PackageError> {
    let read_error = |source| PackageError::Read {
        path: dir.display().to_string(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        if path.is_dir() {
            collect_files(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}

/// Returns `rustc -vV` as run in the workspace, which names the toolchain
/// that cargo builds with there.
fn rustc_version(workspace: &Path) -> Result<Vec<u8>, PackageError> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let description = format!("{rustc} -vV");
    let output = Command::new(&rustc)
        .arg("-vV")
        .current_dir(workspace)
        .output()
        .map_err(|source| PackageError::Spawn {
            command: description.clone(),
            source,
        })?;
    if !output.status.success() {
        return Err(PackageError::Build {
            command: description,
            status: output.status.to_string(),
        });
    }
    Ok(output.stdout)
}

fn cached_zip_path(cache_dir: &Path, fingerprint: &str) -> PathBuf {
    cache_dir.join(format!("rotator-{fingerprint}.zip"))
}

/// Returns the zip kept for `fingerprint`, or `None` when there is none.
fn cached_artifact(cache_dir: &Path, fingerprint: &str) -> Option<Artifact> {
    let zip = std::fs::read(cached_zip_path(cache_dir, fingerprint)).ok()?;
    Some(Artifact::from_zip(zip))
}

/// Keeps the zip for `fingerprint` in place of any earlier one. A failure
/// only costs the next deploy a build, so it is logged and not returned.
fn store_artifact(cache_dir: &Path, fingerprint: &str, artifact: &Artifact) {
    let path = cached_zip_path(cache_dir, fingerprint);
    let partial = path.with_extension(format!("zip.partial-{}", std::process::id()));
    let stored =
        std::fs::write(&partial, &artifact.zip).and_then(|()| std::fs::rename(&partial, &path));
    if let Err(error) = stored {
        tracing::warn!(error = %error, path = %path.display(), "cannot keep the packaged rotator for reuse");
        let _ = std::fs::remove_file(&partial);
        return;
    }

    let Ok(entries) = std::fs::read_dir(cache_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale = name.starts_with("rotator-") && name.ends_with(".zip") && entry.path() != path;
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
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

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn workspace() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("Cargo.toml"), "[workspace]\n");
        write(&dir.path().join("Cargo.lock"), "version = 4\n");
        write(&dir.path().join("rotator/src/main.rs"), "fn main() {}\n");
        write(&dir.path().join("deployer/src/main.rs"), "fn main() {}\n");
        dir
    }

    #[test]
    fn fingerprint_follows_rotator_sources() {
        let dir = workspace();
        let first = source_fingerprint(dir.path()).unwrap();
        assert_eq!(source_fingerprint(dir.path()).unwrap(), first);

        write(&dir.path().join("deployer/src/main.rs"), "fn main() { }\n");
        assert_eq!(source_fingerprint(dir.path()).unwrap(), first);

        write(&dir.path().join("rotator/src/main.rs"), "fn main() { }\n");
        let edited = source_fingerprint(dir.path()).unwrap();
        assert_ne!(edited, first);

        write(&dir.path().join("Cargo.lock"), "version = 3\n");
        assert_ne!(source_fingerprint(dir.path()).unwrap(), edited);
    }

    #[test]
    fn stored_zip_is_found_by_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let artifact = Artifact::from_binary(b"not really an executable").unwrap();

        store_artifact(dir.path(), "aaaa", &artifact);

        let found = cached_artifact(dir.path(), "aaaa").unwrap();
        assert_eq!(found.zip, artifact.zip);
        assert_eq!(found.sha256_hex, artifact.sha256_hex);
        assert!(cached_artifact(dir.path(), "bbbb").is_none());
    }

    #[test]
    fn storing_zip_removes_earlier_one() {
        let dir = tempfile::tempdir().unwrap();
        let artifact = Artifact::from_binary(b"not really an executable").unwrap();

        store_artifact(dir.path(), "aaaa", &artifact);
        store_artifact(dir.path(), "bbbb", &artifact);

        assert!(cached_artifact(dir.path(), "aaaa").is_none());
        assert!(cached_artifact(dir.path(), "bbbb").is_some());
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
