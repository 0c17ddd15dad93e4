//! Writing files: outputs a user names on the command line, and secrets (the TLS key, weights).
//!
//! - [`write_output`] is what every output flag uses: `-` is standard output; a regular file
//!   (or a path that does not exist yet) is replaced atomically through a temporary file and a
//!   rename, keeping an existing file's mode; anything else (a symbolic link such as
//!   `/dev/stdout`, a FIFO, a device) is written through, never replaced.
//! - [`write_secret`] writes a file only its owner may read (mode 0600 whatever the umask),
//!   atomically, and never through a symbolic link or into a special file; without `overwrite`
//!   an existing file is left alone (checked by the rename itself, so no race).
//!
//! Atomic writes create the temporary file beside the target with an unpredictable name (64
//! bits from the OS-seeded CSPRNG, plus `tempfile`'s own random characters) and `O_EXCL`
//! (`create_new`): a file or symbolic link planted at any name is never opened, let alone
//! followed. The mode is set at creation (so the content is never readable by others, even
//! for an instant), then fixed exactly with `fchmod` on the open descriptor for secrets. A
//! failure removes the temporary file and leaves the target as it was.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::path::Path;

/// Mode of secret files: owner read/write, nobody else.
pub const SECRET_MODE: u32 = 0o600;
/// Mode of public files that must not be changed by others (a certificate).
pub const PUBLIC_MODE: u32 = 0o644;
/// Mode of a new output file before the umask (as `File::create` uses).
const OUTPUT_MODE: u32 = 0o666;

/// Whether `path` names standard output (`-`).
pub fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Writes `bytes` where the user asked: standard output for `-` (a closed pipe is not an
/// error: the reader stopped reading); an atomic replacement for a regular file or a new path
/// (an existing file keeps its mode; a new one gets 0666 less the umask); a plain write through
/// for symbolic links and special files, which stay in place. A directory is an error.
pub fn write_output(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if is_stdout(path) {
        let mut out = io::stdout().lock();
        return match out.write_all(bytes).and_then(|_| out.flush()) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            r => r,
        };
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => replace(path, bytes, Mode::Exact(existing_mode(&m)), true),
        Ok(m) if m.is_dir() => Err(io::Error::new(io::ErrorKind::IsADirectory, "it is a directory")),
        Ok(_) => write_through(path, bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => replace(path, bytes, Mode::Umask(OUTPUT_MODE), true),
        Err(e) => Err(e),
    }
}

/// Writes a secret file: mode 0600 exactly, atomically (see the module doc). Refuses a path
/// that is a symbolic link, a directory or a special file (a secret written through a link
/// would land wherever the link points, with that file's mode), and, without `overwrite`, an
/// existing file (`ErrorKind::AlreadyExists`).
pub fn write_secret(path: &Path, bytes: &[u8], overwrite: bool) -> io::Result<()> {
    write_with_mode(path, bytes, SECRET_MODE, overwrite)
}

/// [`write_secret`] with another exact mode (e.g. [`PUBLIC_MODE`] for a certificate that
/// others may read but not change).
pub fn write_with_mode(path: &Path, bytes: &[u8], mode: u32, overwrite: bool) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_file() && !overwrite => {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "the file already exists"));
        }
        Ok(m) if m.is_file() => {}
        Ok(m) => {
            let what = if m.file_type().is_symlink() {
                "a symbolic link"
            } else if m.is_dir() {
                "a directory"
            } else {
                "a special file"
            };
            return Err(io::Error::other(format!(
                "it is {what}; a private file is only written as a regular file (remove it or choose another path)"
            )));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    replace(path, bytes, Mode::Exact(mode), overwrite)
}

/// How the temporary file's mode is set.
#[derive(Clone, Copy)]
enum Mode {
    /// At creation, less the umask.
    Umask(u32),
    /// At creation, then exactly (umask ignored) with `fchmod`.
    Exact(u32),
}

#[cfg(unix)]
fn existing_mode(m: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    m.permissions().mode() & 0o777
}

#[cfg(not(unix))]
fn existing_mode(_: &std::fs::Metadata) -> u32 {
    OUTPUT_MODE
}

#[cfg(unix)]
fn permissions(mode: u32) -> Permissions {
    use std::os::unix::fs::PermissionsExt;
    Permissions::from_mode(mode)
}

/// Writes through a symbolic link or into a special file (FIFO, device), which stays in place.
fn write_through(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(path)?;
    f.write_all(bytes)?;
    f.flush()?;
    // Only a regular file behind a link can be synced; a pipe or terminal cannot.
    if f.metadata().is_ok_and(|m| m.is_file()) {
        f.sync_all()?;
    }
    Ok(())
}

/// Creates a fresh temporary file beside `path` (unpredictable name, `O_EXCL`, `mode`), writes
/// and syncs it, then renames it onto `path` (`clobber`) or links it there only if `path` does
/// not exist (no overwrite, atomically).
fn replace(path: &Path, bytes: &[u8], mode: Mode, clobber: bool) -> io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let prefix = format!(".{name}.{:016x}.", rand::random::<u64>());
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    builder.permissions(permissions(match mode {
        Mode::Umask(m) | Mode::Exact(m) => m,
    }));
    let mut tmp = builder.tempfile_in(dir)?;
    #[cfg(unix)]
    if let Mode::Exact(m) = mode {
        tmp.as_file().set_permissions(permissions(m))?;
    }
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    let persisted = if clobber { tmp.persist(path) } else { tmp.persist_noclobber(path) };
    persisted.map_err(|e| e.error)?;
    // Make the rename itself durable; not every file system can sync a directory.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt, symlink};
    use std::path::PathBuf;

    use super::*;

    /// A fresh folder under the system's temp dir, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            Scratch(tempfile::Builder::new().prefix(&format!("veil-files-{tag}-")).tempdir().unwrap().keep())
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    /// The old `write_atomic` wrote `.{name}.{pid}.tmp` with `File::create`, which follows a
    /// symbolic link: another local user who planted one there received the server's key in a
    /// file of their choosing. Found by review (issue 14).
    #[test]
    fn a_symlink_at_the_old_temporary_name_is_not_followed() {
        let s = Scratch::new("plant");
        let victim = s.0.join("attacker-owned");
        std::fs::write(&victim, b"untouched").unwrap();
        let target = s.0.join("server.key");
        let planted = s.0.join(format!(".server.key.{}.tmp", std::process::id()));
        symlink(&victim, &planted).unwrap();
        write_secret(&target, b"SECRET KEY", false).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"untouched", "the planted link was followed");
        assert_eq!(std::fs::read(&target).unwrap(), b"SECRET KEY");
        assert_eq!(mode(&target), 0o600);
        assert!(std::fs::symlink_metadata(&planted).unwrap().file_type().is_symlink());
        // Outputs too: a stats file replaced through the same name.
        let stats = s.0.join("stats.json");
        symlink(&victim, s.0.join(format!(".stats.json.{}.tmp", std::process::id()))).unwrap();
        write_output(&stats, b"{}").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
        assert_eq!(std::fs::read(&stats).unwrap(), b"{}");
    }

    #[test]
    fn a_secret_is_never_written_through_a_symlink_or_over_an_existing_file() {
        let s = Scratch::new("secret");
        let victim = s.0.join("elsewhere");
        std::fs::write(&victim, b"untouched").unwrap();
        std::fs::set_permissions(&victim, Permissions::from_mode(0o644)).unwrap();
        let link = s.0.join("model.weights");
        symlink(&victim, &link).unwrap();
        for overwrite in [false, true] {
            let e = write_secret(&link, b"WEIGHTS", overwrite).unwrap_err();
            assert!(e.to_string().contains("symbolic link"), "{e}");
        }
        assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
        let key = s.0.join("server.key");
        write_secret(&key, b"old", false).unwrap();
        let e = write_secret(&key, b"new", false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&key).unwrap(), b"old");
        // Overwriting also fixes a mode that was too open.
        std::fs::set_permissions(&key, Permissions::from_mode(0o644)).unwrap();
        write_secret(&key, b"new", true).unwrap();
        assert_eq!((std::fs::read(&key).unwrap(), mode(&key)), (b"new".to_vec(), 0o600));
        let leftovers: Vec<_> = std::fs::read_dir(&s.0).unwrap().filter_map(|e| e.ok()).collect();
        assert_eq!(leftovers.len(), 3, "no temporary file is left behind: {leftovers:?}");
    }

    #[test]
    fn an_output_symlink_is_written_through_and_a_regular_file_keeps_its_mode() {
        let s = Scratch::new("output");
        let real = s.0.join("real.json");
        std::fs::write(&real, b"old").unwrap();
        let link = s.0.join("link.json");
        symlink(&real, &link).unwrap();
        write_output(&link, b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link survives");
        assert_eq!(std::fs::read(&real).unwrap(), b"new");
        // A link to a file that does not exist yet creates it, as a shell redirection does.
        let dangling = s.0.join("later.json");
        symlink(s.0.join("made.json"), &dangling).unwrap();
        write_output(&dangling, b"x").unwrap();
        assert_eq!(std::fs::read(s.0.join("made.json")).unwrap(), b"x");
        // A character device is written, not replaced.
        write_output(Path::new("/dev/null"), b"discarded").unwrap();
        assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
        std::fs::set_permissions(&real, Permissions::from_mode(0o640)).unwrap();
        write_output(&real, b"again").unwrap();
        assert_eq!((std::fs::read(&real).unwrap(), mode(&real)), (b"again".to_vec(), 0o640));
        let e = write_output(&s.0, b"x").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::IsADirectory);
    }
}
