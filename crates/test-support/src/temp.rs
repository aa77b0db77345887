//! Scratch directories for files a test writes (configurations, zones,
//! keys), removed when the test ends.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A unique directory under the system temporary directory, removed with
/// its contents when dropped. The path is public (`dir.0`) for tests that
/// join names to it.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates an empty directory, unique to this process and call.
    ///
    /// # Panics
    ///
    /// If the directory cannot be created.
    pub fn new() -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("zerorpc-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("creating a temporary directory");
        TempDir(path)
    }

    /// Writes `contents` to the file `name` of the directory; returns its path.
    ///
    /// # Panics
    ///
    /// If the file cannot be written.
    pub fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("writing a temporary file");
        path
    }

    /// The directory's path as UTF-8, as configuration files need it.
    ///
    /// # Panics
    ///
    /// If the system's temporary directory is not UTF-8.
    pub fn path_str(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temporary directory")
    }
}

impl Default for TempDir {
    fn default() -> TempDir {
        TempDir::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
